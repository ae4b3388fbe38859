package archiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/redisagg"
)

// ErrFenced is returned by Claim and Save of RedisCheckpoints once an
// archiver with a higher fence claimed the checkpoints: this one was deposed
// and must stop.
var ErrFenced = errors.New("archive checkpoints claimed by a newer archiver (fenced)")

// RedisCheckpoints keeps the checkpoints in one Redis hash, one field per
// shard holding {"durable":SEQ,"flush_at":SEQ}. The key is hash-tagged
// {archive} so it lives in one Redis Cluster slot, and is separate from the
// aggregator's positions: the archive is of raw events, not of an aggregate
// namespace, so promoting a namespace does not restart it. Safe for
// concurrent use.
//
// In a group of instances one archiver at a time holds the archive lease
// (Archiver.RunLeased); it Claims the checkpoints with its lease's fence before it
// loads any, and from then on every Save of an archiver with a lower fence
// is refused inside Redis. A deposed archiver can therefore only finish an
// object whose boundary it had already saved, and the new one, having loaded
// that boundary, writes the same object: the archive gets no overlap even
// when a paused process wakes up after its lease moved.
type RedisCheckpoints struct {
	rdb redis.UniversalClient
	key string
	// fenceKey holds the highest fence that claimed the checkpoints; the
	// same slot as the hash, so one script reads both on a Redis Cluster.
	fenceKey string
	fence    atomic.Int64 // 0: unfenced (one archiver, no group)
}

// claimScript raises the fence in KEYS[1] to ARGV[1], refusing (0) to lower
// it.
var claimScript = redis.NewScript(`
local f = tonumber(redis.call('GET', KEYS[1]) or '0')
if f > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`)

// fencedSaveScript sets field ARGV[1] of KEYS[1] to ARGV[2] unless the fence
// in KEYS[2] is above ARGV[3] (0).
var fencedSaveScript = redis.NewScript(`
local f = tonumber(redis.call('GET', KEYS[2]) or '0')
if f > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// NewRedisCheckpoints stores checkpoints under
// redisagg.KeysFor(namespace).ArchiveCheckpoint: one hash for the empty
// namespace, or one per namespace (two deployments sharing a Redis, each
// with its own archive).
func NewRedisCheckpoints(rdb redis.UniversalClient, namespace string) *RedisCheckpoints {
	keys := redisagg.KeysFor(namespace)
	return &RedisCheckpoints{rdb: rdb, key: keys.ArchiveCheckpoint(), fenceKey: keys.ArchiveFence()}
}

// Key is the Redis key of the hash.
func (r *RedisCheckpoints) Key() string { return r.key }

// Claim makes fence (a lease's fencing token, > 0) the checkpoints' fence:
// later Saves carry it, and Saves carrying a lower one are refused. It
// returns ErrFenced when a higher fence claimed them already.
func (r *RedisCheckpoints) Claim(ctx context.Context, fence int64) error {
	if fence <= 0 {
		return fmt.Errorf("claim archive checkpoints: fence %d is not positive", fence)
	}
	ok, err := claimScript.Run(ctx, r.rdb, []string{r.fenceKey}, fence).Int()
	if err != nil {
		return fmt.Errorf("claim archive checkpoints %s with fence %d: %w", r.key, fence, err)
	}
	if ok == 0 {
		return fmt.Errorf("claim archive checkpoints %s with fence %d: %w", r.key, fence, ErrFenced)
	}
	r.fence.Store(fence)
	return nil
}

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

// Save replaces the checkpoint of shard (one HSET, atomic), after a Claim
// only while no higher fence has claimed the checkpoints (else ErrFenced).
func (r *RedisCheckpoints) Save(ctx context.Context, shard string, c Checkpoint) error {
	fence := r.fence.Load()
	if fence == 0 {
		if err := r.rdb.HSet(ctx, r.key, shard, encodeCheckpoint(c)).Err(); err != nil {
			return fmt.Errorf("save archive checkpoint of shard %s: %w", shard, err)
		}
		return nil
	}
	ok, err := fencedSaveScript.Run(ctx, r.rdb, []string{r.key, r.fenceKey}, shard, encodeCheckpoint(c), strconv.FormatInt(fence, 10)).Int()
	if err != nil {
		return fmt.Errorf("save archive checkpoint of shard %s: %w", shard, err)
	}
	if ok == 0 {
		return fmt.Errorf("save archive checkpoint of shard %s with fence %d: %w", shard, fence, ErrFenced)
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
