package redisagg

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// forEachKey runs SCAN MATCH pattern on the one node of a single Redis or
// on every master of a cluster, and calls fn with each page of keys and the
// node holding them. A cluster's masters are scanned concurrently, so fn
// must be safe for concurrent use.
func forEachKey(ctx context.Context, rdb redis.UniversalClient, pattern string, fn func(ctx context.Context, node redis.Cmdable, keys []string) error) error {
	one := func(ctx context.Context, node redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := node.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return fmt.Errorf("scan %s: %w", pattern, err)
			}
			if err := fn(ctx, node, keys); err != nil {
				return err
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return one(ctx, c) })
	}
	return one(ctx, rdb)
}

// Drop deletes every key of the namespace (SCAN MATCH p:NS:* and UNLINK,
// on every master of a cluster) and returns how many it deleted. The
// registry and the archive checkpoints lie outside every namespace and
// stay. The caller makes sure nothing reads the namespace while it goes.
func (k Keys) Drop(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	var total atomic.Int64
	err := forEachKey(ctx, rdb, k.pattern(), func(ctx context.Context, node redis.Cmdable, keys []string) error {
		for _, key := range keys {
			// One key per UNLINK: keys of different slots cannot share a
			// command on a cluster.
			n, err := node.Unlink(ctx, key).Result()
			if err != nil {
				return fmt.Errorf("unlink %s: %w", key, err)
			}
			total.Add(n)
		}
		return nil
	})
	if err != nil {
		return total.Load(), fmt.Errorf("drop namespace %s: %w", k.ns, err)
	}
	return total.Load(), nil
}
