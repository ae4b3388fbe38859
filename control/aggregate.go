package control

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/aggregator"
	"github.com/pulsehq/pulse/lease"
	"github.com/pulsehq/pulse/metric"
)

// Lag is the live aggregator's lag per shard; nil without the aggregate
// role, empty until the aggregator read its first batch.
func (r *Runtime) Lag() map[string]aggregator.Lag {
	if !r.cfg.Aggregate {
		return nil
	}
	r.aggMu.Lock()
	defer r.aggMu.Unlock()
	if r.agg == nil {
		return map[string]aggregator.Lag{}
	}
	return r.agg.Lag()
}

func (r *Runtime) aggConfig(cat *metric.Catalog, reg prometheus.Registerer, log *slog.Logger) aggregator.Config {
	return aggregator.Config{
		Catalog:         cat,
		DedupWindow:     r.cfg.DedupWindow,
		AllowedLateness: r.cfg.AllowedLateness,
		Logger:          log,
		Registerer:      reg,
	}
}

// startAggregator makes the live aggregator of the current namespace and
// returns the task that runs it, for Run's group. Its metrics go to the
// node's registry, where a new aggregator reuses the collectors of the one
// before it (a switch makes one), so they continue across switches.
// Called with switchMu held.
func (r *Runtime) startAggregator() (func(context.Context) error, error) {
	v := r.cur.Load()
	log := r.log.With("role", "aggregate", "namespace", v.Info.Name)
	agg, err := aggregator.New(r.cfg.Stream, v.Store, r.aggConfig(v.Catalog, r.cfg.Registerer, log))
	if err != nil {
		return nil, fmt.Errorf("aggregator: %w", err)
	}
	// Its own context, so a switch can stop it alone; Run's ends it too.
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.aggMu.Lock()
	r.agg, r.aggStop, r.aggDone = agg, cancel, done
	r.aggMu.Unlock()
	return func(ctx context.Context) error {
		defer close(done)
		defer context.AfterFunc(ctx, cancel)()
		return r.runAggregator(actx, v.Info.Name, agg, log)
	}, nil
}

// stopAggregator stops the live aggregator, if one runs, and waits until
// it stopped: it commits whole batches only, so stopping anywhere is safe,
// and once it returned nothing writes the old namespace any more.
func (r *Runtime) stopAggregator() (wasRunning bool) {
	r.aggMu.Lock()
	stop, done := r.aggStop, r.aggDone
	r.aggStop, r.aggDone = nil, nil
	r.aggMu.Unlock()
	if stop == nil {
		return false
	}
	stop()
	<-done
	return true
}

// abandonAggregator forgets an aggregator whose task never ran.
func (r *Runtime) abandonAggregator() {
	r.aggMu.Lock()
	stop, done := r.aggStop, r.aggDone
	r.agg, r.aggStop, r.aggDone = nil, nil, nil
	r.aggMu.Unlock()
	if stop != nil {
		stop()
		close(done)
	}
}

// runAggregator runs the live aggregator: alone over every shard, or in a
// group over the shards this instance holds leases for, in the lease
// namespace of ns (its own lease keys and fences).
func (r *Runtime) runAggregator(ctx context.Context, ns string, agg *aggregator.Aggregator, log *slog.Logger) error {
	gc := r.cfg.Group
	if gc == nil {
		return agg.Run(ctx)
	}
	// The manager made anew on every switch shares its metrics with the
	// previous one (internal/promreg), which stopped before this started.
	m, err := lease.New(r.cfg.Redis, lease.Config{Namespace: ns, Owner: gc.Owner, TTL: gc.LeaseTTL, Logger: log, Registerer: r.cfg.Registerer})
	if err != nil {
		return fmt.Errorf("aggregator group: %w", err)
	}
	log.Info("aggregating in a group (shard leases)", "owner", m.Owner(), "lease_ttl", gc.LeaseTTL)
	return RunInGroup(ctx, m, "aggregator group", agg.Workable, func(ctx context.Context) error {
		return agg.RunLeased(ctx, m)
	}, log)
}
