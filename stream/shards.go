package stream

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"
)

// Lister lists the shards of a stream.
type Lister interface {
	Shards(ctx context.Context) ([]Shard, error)
}

// ShardRunner runs one worker per shard of a stream, the way every reader
// of the stream (the aggregator, the archiver) does: the shard list is
// refreshed every Every, a new shard gets a worker, and a shard with
// parents (after a reshard) gets one only once its parents ended.
type ShardRunner struct {
	Every   time.Duration // shard list refresh
	Backoff time.Duration // first retry delay after a failed listing, doubling up to Every
	// ListFailed, Started and Ended, when set, are told of a failed
	// listing, a worker started and a shard read to its end.
	ListFailed func(err error)
	Started    func(shard string)
	Ended      func(shard string)
}

// Run calls work(ctx, shard) in a goroutine per shard until ctx is done,
// then returns nil once every worker returned. work returns true when the
// shard is closed and read to its end, false when it stopped because ctx
// ended.
func (r ShardRunner) Run(ctx context.Context, src Lister, work func(ctx context.Context, shard string) (ended bool)) error {
	g, gctx := errgroup.WithContext(ctx)
	finished := make(chan string)
	running := map[string]bool{}
	ended := map[string]bool{}
	failures := 0

	discover := func() time.Duration {
		shards, err := src.Shards(gctx)
		if err != nil {
			if gctx.Err() == nil && r.ListFailed != nil {
				r.ListFailed(err)
			}
			failures++
			return min(r.Backoff<<min(failures, 10), r.Every)
		}
		failures = 0
		for _, s := range Startable(shards, running, ended) {
			running[s] = true
			if r.Started != nil {
				r.Started(s)
			}
			g.Go(func() error {
				if work(gctx, s) {
					select {
					case finished <- s:
					case <-gctx.Done():
					}
				}
				return nil
			})
		}
		return r.Every
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
				if r.Ended != nil {
					r.Ended(s)
				}
				// A child may be waiting for this shard: look now.
				t.Reset(discover())
			case <-t.C:
				t.Reset(discover())
			}
		}
	})
	return g.Wait()
}
