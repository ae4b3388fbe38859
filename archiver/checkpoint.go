package archiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// RedisCheckpoints keeps the checkpoints in one Redis hash, one field per
// shard holding {"durable":SEQ,"flush_at":SEQ}. The key is hash-tagged
// {archive} so it lives in one Redis Cluster slot, and is separate from the
// aggregator's positions: the archive is of raw events, not of an aggregate
// namespace, so promoting a namespace does not restart it. Safe for
// concurrent use.
type RedisCheckpoints struct {
	rdb redis.UniversalClient
	key string
}

// NewRedisCheckpoints stores checkpoints under p:{archive}:ck, or
// p:NAMESPACE:{archive}:ck for a non-empty namespace (two deployments
// sharing a Redis, each with its own archive).
func NewRedisCheckpoints(rdb redis.UniversalClient, namespace string) *RedisCheckpoints {
	key := "p:{archive}:ck"
	if namespace != "" {
		key = "p:" + namespace + ":{archive}:ck"
	}
	return &RedisCheckpoints{rdb: rdb, key: key}
}

// Key is the Redis key of the hash.
func (r *RedisCheckpoints) Key() string { return r.key }

// Load returns the checkpoint of shard, zero when none was saved.
func (r *RedisCheckpoints) Load(ctx context.Context, shard string) (Checkpoint, error) {
	v, err := r.rdb.HGet(ctx, r.key, shard).Bytes()
	if errors.Is(err, redis.Nil) {
		return Checkpoint{}, nil
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("load archive checkpoint of shard %s: %w", shard, err)
	}
	c, err := decodeCheckpoint(v)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("load archive checkpoint of shard %s from %s: %w", shard, r.key, err)
	}
	return c, nil
}

// Save replaces the checkpoint of shard (one HSET, atomic).
func (r *RedisCheckpoints) Save(ctx context.Context, shard string, c Checkpoint) error {
	if err := r.rdb.HSet(ctx, r.key, shard, encodeCheckpoint(c)).Err(); err != nil {
		return fmt.Errorf("save archive checkpoint of shard %s: %w", shard, err)
	}
	return nil
}

type checkpointJSON struct {
	Durable string `json:"durable,omitempty"`
	FlushAt string `json:"flush_at,omitempty"`
}

func encodeCheckpoint(c Checkpoint) []byte {
	b, _ := json.Marshal(checkpointJSON(c)) // two strings: cannot fail
	return b
}

func decodeCheckpoint(b []byte) (Checkpoint, error) {
	var j checkpointJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return Checkpoint{}, fmt.Errorf("decode checkpoint %q: %w", b, err)
	}
	for _, s := range []string{j.Durable, j.FlushAt} {
		if !isSeq(s) {
			return Checkpoint{}, fmt.Errorf("decode checkpoint %q: seq %q: want decimal digits without leading zero", b, s)
		}
	}
	return Checkpoint(j), nil
}

// isSeq accepts "" and decimal sequence numbers as the streams make them.
func isSeq(s string) bool {
	if len(s) > 1 && s[0] == '0' || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
