package aggregator

import (
	"context"
	"fmt"
	"sort"

	"github.com/pulsehq/pulse/stream"
)

// Leases is what a group instance needs of its shard leases (package lease's
// Manager): the shards it holds with their fencing tokens, a signal when
// that set changes, and a way to say that a shard's worker stopped.
type Leases interface {
	Leases() map[string]int64
	Changes() <-chan struct{}
	Done(shard string, fence int64)
}

// Workable lists the shards a group may work now, for the lease manager's
// shard list: every shard of the source not yet applied to its end whose
// parents (after a reshard) were, by whichever instance, or are no longer
// listed. A child thus gets a lease only once its parents' records are all
// applied, so per-key order and dedup hold across a reshard.
func (a *Aggregator) Workable(ctx context.Context) ([]string, error) {
	shards, err := a.src.Shards(ctx)
	if err != nil {
		a.met.errors.WithLabelValues("shards").Inc()
		return nil, fmt.Errorf("list shards: %w", err)
	}
	ids := make([]string, len(shards))
	for i, s := range shards {
		ids[i] = s.ID
	}
	ended, err := a.st.Ended(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := stream.Startable(shards, nil, ended)
	sort.Strings(out)
	return out, nil
}

// RunLeased works the shards ls holds, one worker per shard, until ctx is
// done; it returns nil once every worker stopped (call the lease manager's
// Leave after that). Each commit carries its lease's fence. A worker stops
// when its lease leaves ls.Leases (or its fence changes: lost and taken
// again), or when the store refuses its write as fenced; then ls.Done is
// called for it, so the lease can pass to the next owner. A worker that
// applied a closed shard to its end records that in the store and idles
// until the lease is released. Call RunLeased once, instead of Run.
func (a *Aggregator) RunLeased(ctx context.Context, ls Leases) error {
	type worker struct {
		fence    int64
		cancel   context.CancelFunc
		done     chan struct{}
		stopping bool
	}
	workers := map[string]*worker{}
	exited := make(chan struct{}, 1)
	start := func(shard string, fence int64) {
		wctx, cancel := context.WithCancel(ctx)
		w := &worker{fence: fence, cancel: cancel, done: make(chan struct{})}
		workers[shard] = w
		a.log.Info("shard lease acquired, worker started", "shard", shard, "fence", fence)
		go func() {
			defer func() {
				close(w.done)
				select {
				case exited <- struct{}{}:
				default:
				}
			}()
			a.work(wctx, shard, fence, true)
		}()
	}
	finished := func(w *worker) bool {
		select {
		case <-w.done:
			return true
		default:
			return false
		}
	}
	sync := func() {
		held := ls.Leases()
		for shard, w := range workers {
			f, ok := held[shard]
			keep := ok && f == w.fence
			if !keep && !w.stopping {
				w.stopping = true
				w.cancel()
			}
			if !keep && finished(w) {
				w.cancel()
				delete(workers, shard)
				a.dropLag(shard)
				ls.Done(shard, w.fence)
				a.log.Info("shard lease released, worker stopped", "shard", shard, "fence", w.fence)
			}
		}
		for shard, fence := range held {
			if _, ok := workers[shard]; !ok {
				start(shard, fence)
			}
		}
	}
	for {
		sync()
		select {
		case <-ls.Changes():
		case <-exited:
		case <-ctx.Done():
			for _, w := range workers {
				w.cancel()
			}
			for _, w := range workers {
				<-w.done
			}
			return nil
		}
	}
}

// dropLag forgets the lag of a shard this instance no longer works.
func (a *Aggregator) dropLag(shard string) {
	a.mu.Lock()
	delete(a.lag, shard)
	a.mu.Unlock()
	a.met.lagRecords.DeleteLabelValues(shard)
	a.met.lagMillis.DeleteLabelValues(shard)
}
