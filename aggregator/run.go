package aggregator

import (
	"context"

	"github.com/pulsehq/pulse/stream"
)

// Run works every shard of the source, one goroutine each, until ctx is
// done; it then returns nil once every worker stopped. It refreshes the
// shard list every DiscoverEvery and starts workers for new shards. A shard
// with parents (after a reshard) starts only once its parents ended, so the
// events of one key are applied in stream order. Call Run once.
func (a *Aggregator) Run(ctx context.Context) error {
	r := stream.ShardRunner{
		Every:   a.cfg.DiscoverEvery,
		Backoff: a.backoffMin,
		ListFailed: func(err error) {
			a.met.errors.WithLabelValues("shards").Inc()
			a.log.Warn("list shards", "err", err)
		},
		Started: func(s string) { a.log.Info("shard worker started", "shard", s) },
	}
	return r.Run(ctx, a.src, a.runShard)
}
