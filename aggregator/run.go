package aggregator

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pulsehq/pulse/stream"
)

// Run works every shard of the source, one goroutine each, until ctx is
// done; it then returns nil once every worker stopped. It refreshes the
// shard list every DiscoverEvery and starts workers for new shards. A shard
// with parents (after a reshard) starts only once its parents ended, so the
// events of one key are applied in stream order. Call Run once.
func (a *Aggregator) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	finished := make(chan string)
	running := map[string]bool{}
	ended := map[string]bool{}
	failures := 0

	discover := func() time.Duration {
		shards, err := a.src.Shards(gctx)
		if err != nil {
			a.met.errors.WithLabelValues("shards").Inc()
			a.log.Warn("list shards", "err", err)
			failures++
			return min(a.backoffMin<<min(failures, 10), a.cfg.DiscoverEvery)
		}
		failures = 0
		for _, s := range stream.Startable(shards, running, ended) {
			running[s] = true
			a.log.Info("shard worker started", "shard", s)
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
				// A child may be waiting for this shard: look now.
				t.Reset(discover())
			case <-t.C:
				t.Reset(discover())
			}
		}
	})
	return g.Wait()
}
