package archiver

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

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
	now := a.cfg.Clock()
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
		arrival = a.cfg.Clock()
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
// never returned. Call Run once.
func (a *Archiver) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	finished := make(chan string)
	running := map[string]bool{}
	ended := map[string]bool{}
	failures := 0

	discover := func() time.Duration {
		shards, err := a.src.Shards(gctx)
		if err != nil {
			if gctx.Err() == nil {
				a.met.errors.WithLabelValues("shards").Inc()
				a.log.Warn("archiver: list shards", "err", err)
			}
			failures++
			return min(a.cfg.Backoff<<min(failures, 10), a.cfg.DiscoverEvery)
		}
		failures = 0
		for _, s := range stream.Startable(shards, running, ended) {
			running[s] = true
			a.track(s, true)
			a.log.Info("archive worker started", "shard", s)
			g.Go(func() error {
				if a.runShard(gctx, s) {
					select {
					case finished <- s:
					case <-gctx.Done():
					}
				}
				return nil
			})
		}
		return a.cfg.DiscoverEvery
	}

	g.Go(func() error {
		t := time.NewTimer(discover())
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case s := <-finished:
				delete(running, s)
				ended[s] = true
				a.track(s, false)
				// A child may be waiting for this shard: look now.
				t.Reset(discover())
			case <-t.C:
				t.Reset(discover())
			}
		}
	})
	return g.Wait()
}
