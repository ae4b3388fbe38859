package namespace

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// DropKeys deletes every key of namespace name (p:NAME:*) with SCAN and
// UNLINK, on every master of a cluster, and returns how many it deleted.
// The caller removes the namespace from the registry first, so nothing
// reads it while it goes.
func DropKeys(ctx context.Context, rdb redis.UniversalClient, name string) (int64, error) {
	if err := CheckName(name); err != nil {
		return 0, err
	}
	pattern := "p:" + name + ":*"
	var total atomic.Int64
	drop := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return fmt.Errorf("scan %s: %w", pattern, err)
			}
			for _, k := range keys {
				// One key per UNLINK: keys of different slots cannot share
				// a command on a cluster.
				n, err := c.Unlink(ctx, k).Result()
				if err != nil {
					return fmt.Errorf("unlink %s: %w", k, err)
				}
				total.Add(n)
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return drop(ctx, c) })
		return total.Load(), err
	}
	err := drop(ctx, rdb)
	return total.Load(), err
}
