package archiver

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/stream"
)

// Archiver archives every shard of a Source into an ObjectStore. Run it
// once; Lag is safe to call from any goroutine.
type Archiver struct {
	src Source
	ck  Checkpoints
	w   *archive.Writer
	cfg Config
	log *slog.Logger
	met *metrics

	mu     sync.Mutex
	oldest map[string]time.Time // per running shard: arrival of the oldest record not yet durable (zero: none)
}

// New returns an archiver reading src, writing to store and keeping its
// positions in ck.
func New(src Source, store archive.ObjectStore, ck Checkpoints, cfg Config) *Archiver {
	cfg = cfg.withDefaults()
	a := &Archiver{
		src:    src,
		ck:     ck,
		w:      archive.NewWriter(store, cfg.Writer),
		cfg:    cfg,
		log:    cfg.Logger,
		oldest: map[string]time.Time{},
	}
	a.met = newMetrics(cfg.Registerer, a)
	return a
}

// Lag is, per shard being archived, the age of the oldest record read but
// not yet durable in the archive; 0 when every record read is. A shard whose
// worker is restarting after a failure keeps its lag growing.
func (a *Archiver) Lag() map[string]time.Duration {
	now := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]time.Duration, len(a.oldest))
	for s, t := range a.oldest {
		if t.IsZero() {
			out[s] = 0
		} else {
			out[s] = max(now.Sub(t), 0)
		}
	}
	return out
}

// pending notes a record read and added, for Lag.
func (a *Archiver) pending(shard string, arrival time.Time) {
	if arrival.IsZero() {
		arrival = a.cfg.Now()
	}
	a.mu.Lock()
	if t := a.oldest[shard]; t.IsZero() || arrival.Before(t) {
		a.oldest[shard] = arrival
	}
	a.mu.Unlock()
}

// caughtUp notes that every record read of shard is durable.
func (a *Archiver) caughtUp(shard string) {
	a.mu.Lock()
	if _, ok := a.oldest[shard]; ok {
		a.oldest[shard] = time.Time{}
	}
	a.mu.Unlock()
}

func (a *Archiver) track(shard string, on bool) {
	a.mu.Lock()
	if on {
		a.oldest[shard] = time.Time{}
	} else {
		delete(a.oldest, shard)
	}
	a.mu.Unlock()
}

// Run archives every shard, one goroutine each, until ctx is done; each
// worker then flushes what it buffered (within StopTimeout) and Run returns
// nil. It refreshes the shard list every DiscoverEvery; a shard with
// parents (after a reshard) starts once its parents ended, so the archive
// of a key follows stream order across a reshard. Failures are retried,
// never returned. Run may be called again once it returned (a standby that
// becomes the active archiver again), never twice at once.
func (a *Archiver) Run(ctx context.Context) error {
	a.met.active.Set(1)
	defer a.met.active.Set(0)
	defer func() {
		// Lag covers only shards being archived: none after Run.
		a.mu.Lock()
		clear(a.oldest)
		a.mu.Unlock()
	}()
	r := stream.ShardRunner{
		Every:   a.cfg.DiscoverEvery,
		Backoff: a.cfg.Backoff,
		ListFailed: func(err error) {
			a.met.errors.WithLabelValues("shards").Inc()
			a.log.Warn("archiver: list shards", "err", err)
		},
		Started: func(s string) {
			a.track(s, true)
			a.log.Info("archive worker started", "shard", s)
		},
		Ended: func(s string) { a.track(s, false) },
	}
	return r.Run(ctx, a.src, a.runShard)
}
