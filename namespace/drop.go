package namespace

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/redisagg"
)

// DropKeys deletes every key of namespace name (redisagg.Keys.Drop), on
// every master of a cluster, and returns how many it deleted. It refuses a
// name the registry would not hold. The caller removes the namespace from
// the registry first, so nothing reads it while it goes.
func DropKeys(ctx context.Context, rdb redis.UniversalClient, name string) (int64, error) {
	if err := CheckName(name); err != nil {
		return 0, err
	}
	return redisagg.KeysFor(name).Drop(ctx, rdb)
}
