package redisagg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/stream"
)

// What a group of aggregator instances (leases) needs of the store beyond
// Apply and Position: typed refusals, the end of a shard as shared state,
// and on Redis Cluster where an interrupted apply stopped.

// FencedError is the error behind ErrFenced: a writer with a higher fencing
// token already wrote the shard (or one of its sites).
type FencedError struct{ Msg string }

func (e *FencedError) Error() string        { return ErrFenced.Error() + ": " + e.Msg }
func (e *FencedError) Is(target error) bool { return target == ErrFenced }

// Fenced marks the error for callers that match on behaviour rather than
// on this package (the aggregator).
func (e *FencedError) Fenced() bool { return true }

// OverlapError is the error behind ErrOverlap: a site already holds the
// shard up to Applied, inside the commit's range First..Last.
type OverlapError struct {
	Shard, Applied, First, Last string
	Msg                         string
}

func (e *OverlapError) Error() string        { return ErrOverlap.Error() + ": " + e.Msg }
func (e *OverlapError) Is(target error) bool { return target == ErrOverlap }

// AppliedTo is the site's checkpoint: the end of a commit that was applied
// to some sites only (Redis Cluster, the writer stopped between site
// parts). A writer resuming the shard must end a commit exactly there,
// which makes every site part either wholly applied or wholly new.
func (e *OverlapError) AppliedTo() string { return e.Applied }

// refusal turns the apply script's error replies into typed errors.
func refusal(err error) error {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return err
	}
	msg := rerr.Error()
	switch {
	case strings.Contains(msg, "FENCED"):
		return &FencedError{Msg: msg}
	case strings.Contains(msg, "OVERLAP"):
		// 'OVERLAP KEY holds SHARD up to SEQ, commit is FIRST..LAST'
		e := &OverlapError{Msg: msg}
		if i := strings.Index(msg, " up to "); i >= 0 {
			rest := msg[i+len(" up to "):]
			seq, rng, _ := strings.Cut(rest, ", commit is ")
			e.Applied = seq
			e.First, e.Last, _ = strings.Cut(rng, "..")
		}
		if i := strings.Index(msg, " holds "); i >= 0 {
			e.Shard, _, _ = strings.Cut(msg[i+len(" holds "):], " ")
		}
		return e
	}
	return err
}

// markLua runs before the site parts of a commit on Redis Cluster: it
// refuses a fenced writer before any site is written, and records the
// commit's end as pending in the shard position, so that a writer resuming
// after a crash between the parts ends its first commit there (Pending).
// A pending end beyond the position is kept until a commit reaches it (a
// commit straddling it is refused by the sites that hold it, and must not
// hide it). It claims the position with the writer's fence, so an older
// writer's later position write is refused.
var markLua = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'fence', 'seq', 'pending')
if v[1] and tonumber(v[1]) > tonumber(ARGV[1]) then
  return redis.error_reply('FENCED shard ' .. ARGV[3] .. ' has fence ' .. v[1])
end
local seq, pending = v[2] or '', v[3]
local active = pending and (#seq < #pending or (#seq == #pending and seq < pending))
if active then
  redis.call('HSET', KEYS[1], 'fence', ARGV[1])
else
  redis.call('HSET', KEYS[1], 'pending', ARGV[2], 'fence', ARGV[1])
end
return 1
`)

// endLua records that a shard was applied to its end (a closed shard read
// to its last record), fenced like an apply.
var endLua = redis.NewScript(`
local pf = redis.call('HGET', KEYS[1], 'fence')
if pf and tonumber(pf) > tonumber(ARGV[1]) then
  return redis.error_reply('FENCED shard ' .. ARGV[2] .. ' has fence ' .. pf)
end
redis.call('HSET', KEYS[1], 'ended', '1', 'fence', ARGV[1])
return 1
`)

// mark runs markLua for c's shard.
func (s *Store) mark(ctx context.Context, shard, last string, fence int64) error {
	err := markLua.Run(ctx, s.rdb, []string{s.keys.position(shard)}, strconv.FormatInt(fence, 10), last, shard).Err()
	if err != nil {
		return refusal(err)
	}
	return nil
}

// Pending returns the end of a commit of shard whose site parts may be
// partly applied (Redis Cluster: the writer stopped between the parts), or
// "" when none is: the next commit of the shard must end there. On a
// single node a commit is one script and nothing is ever pending.
func (s *Store) Pending(ctx context.Context, shard string) (string, error) {
	v, err := s.rdb.HMGet(ctx, s.keys.position(shard), "seq", "pending").Result()
	if err != nil {
		return "", fmt.Errorf("read pending commit of shard %s: %w", shard, err)
	}
	seq, _ := v[0].(string)
	pending, _ := v[1].(string)
	if pending == "" || stream.CompareSeq(pending, seq) <= 0 {
		return "", nil
	}
	return pending, nil
}

// End records that shard was applied to its end, with the writer's fence
// (ErrFenced when a newer writer owns it). Ended tells every instance of a
// group, so a child shard of a reshard starts only after its parents ended,
// whoever applied them.
func (s *Store) End(ctx context.Context, shard string, fence int64) error {
	if err := endLua.Run(ctx, s.rdb, []string{s.keys.position(shard)}, strconv.FormatInt(fence, 10), shard).Err(); err != nil {
		return fmt.Errorf("mark shard %s ended: %w", shard, refusal(err))
	}
	return nil
}

// Ended reports which of shards were recorded as applied to their end.
func (s *Store) Ended(ctx context.Context, shards []string) (map[string]bool, error) {
	cmds := make([]*redis.StringCmd, len(shards))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, sh := range shards {
			cmds[i] = p.HGet(ctx, s.keys.position(sh), "ended")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read ended shards: %w", err)
	}
	out := make(map[string]bool, len(shards))
	for i, sh := range shards {
		v, err := cmds[i].Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read ended mark of shard %s: %w", sh, err)
		}
		if v == "1" {
			out[sh] = true
		}
	}
	return out, nil
}
