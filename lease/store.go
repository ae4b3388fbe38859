package lease

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/redisagg"
)

// nowMillis is the server's clock in ms; every script decides expiry with it
// so that instances on machines with skewed clocks agree.
const nowMillis = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// heartbeatScript: KEYS[1] members; ARGV owner, ttl ms. Returns the live
// members.
var heartbeatScript = redis.NewScript(nowMillis + `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
`)

// renewScript: KEYS lease keys; ARGV owner, ttl ms, then one fence per key.
// Returns 1 (renewed) or 0 (no longer ours) per key. A lease still holding
// our owner and fence was taken by nobody since, even if past its expiry.
var renewScript = redis.NewScript(nowMillis + `
local ttl = tonumber(ARGV[2])
local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('HMGET', k, 'owner', 'fence')
  if v[1] == ARGV[1] and v[2] == ARGV[i + 2] then
    redis.call('HSET', k, 'exp', now + ttl)
    redis.call('PEXPIRE', k, ttl)
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`)

// acquireScript: KEYS[1] fence hash, KEYS[2..] lease keys; ARGV owner, ttl
// ms, want, then the shard id of each lease key. Takes, in order, up to want
// leases that are absent, expired or already ours (a lease we dropped
// locally, or held before a restart under the same owner), each with a new
// fence. Returns pairs (candidate index from 1, fence).
var acquireScript = redis.NewScript(nowMillis + `
local ttl = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local out = {}
for i = 2, #KEYS do
  if want <= 0 then break end
  local v = redis.call('HMGET', KEYS[i], 'owner', 'exp')
  if not v[1] or v[1] == ARGV[1] or (tonumber(v[2]) or 0) <= now then
    local f = redis.call('HINCRBY', KEYS[1], ARGV[i + 2], 1)
    redis.call('HSET', KEYS[i], 'owner', ARGV[1], 'fence', f, 'exp', now + ttl)
    redis.call('PEXPIRE', KEYS[i], ttl)
    out[#out + 1] = i - 1
    out[#out + 1] = f
    want = want - 1
  end
end
return out
`)

// releaseScript: KEYS lease keys; ARGV owner, then one fence per key.
// Deletes each key still holding our owner and fence. Returns how many.
var releaseScript = redis.NewScript(`
local n = 0
for i, k in ipairs(KEYS) do
  local v = redis.call('HMGET', k, 'owner', 'fence')
  if v[1] == ARGV[1] and v[2] == ARGV[i + 1] then
    redis.call('DEL', k)
    n = n + 1
  end
end
return n
`)

// store is the scripts over the lease keys of one namespace.
type store struct {
	rdb   redis.UniversalClient
	keys  redisagg.Keys
	owner string
	ttl   string // ms
}

func newStore(rdb redis.UniversalClient, ns, owner string, ttl time.Duration) *store {
	return &store{rdb: rdb, keys: redisagg.KeysFor(ns), owner: owner, ttl: strconv.FormatInt(ttl.Milliseconds(), 10)}
}

// heartbeat refreshes this owner's membership and returns the live members.
func (s *store) heartbeat(ctx context.Context) ([]string, error) {
	members, err := heartbeatScript.Run(ctx, s.rdb, []string{s.keys.LeaseMembers()}, s.owner, s.ttl).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("heartbeat %s: %w", s.owner, err)
	}
	return members, nil
}

// renew extends the given leases; ok[i] says whether shards[i] is still ours.
func (s *store) renew(ctx context.Context, shards []string, fences []int64) ([]bool, error) {
	keys := make([]string, len(shards))
	args := make([]any, 0, 2+len(shards))
	args = append(args, s.owner, s.ttl)
	for i, sh := range shards {
		keys[i] = s.keys.LeaseShard(sh)
		args = append(args, strconv.FormatInt(fences[i], 10))
	}
	res, err := renewScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("renew %d leases: %w", len(shards), err)
	}
	if len(res) != len(shards) {
		return nil, fmt.Errorf("renew %d leases: script answered %d results", len(shards), len(res))
	}
	ok := make([]bool, len(res))
	for i, r := range res {
		ok[i] = r == 1
	}
	return ok, nil
}

// acquire takes up to want of the candidates, in order, and returns the
// fence of each one taken.
func (s *store) acquire(ctx context.Context, candidates []string, want int) (map[string]int64, error) {
	keys := make([]string, 0, 1+len(candidates))
	keys = append(keys, s.keys.LeaseFence())
	args := make([]any, 0, 3+len(candidates))
	args = append(args, s.owner, s.ttl, want)
	for _, sh := range candidates {
		keys = append(keys, s.keys.LeaseShard(sh))
		args = append(args, sh)
	}
	res, err := acquireScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("acquire up to %d of %d shards: %w", want, len(candidates), err)
	}
	got := make(map[string]int64, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		idx := int(res[i]) - 1
		if idx < 0 || idx >= len(candidates) {
			return nil, fmt.Errorf("acquire: script answered index %d of %d candidates", idx, len(candidates))
		}
		got[candidates[idx]] = res[i+1]
	}
	return got, nil
}

// release deletes the leases still held with these fences.
func (s *store) release(ctx context.Context, shards []string, fences []int64) error {
	keys := make([]string, len(shards))
	args := make([]any, 0, 1+len(shards))
	args = append(args, s.owner)
	for i, sh := range shards {
		keys[i] = s.keys.LeaseShard(sh)
		args = append(args, strconv.FormatInt(fences[i], 10))
	}
	if err := releaseScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("release %d leases: %w", len(shards), err)
	}
	return nil
}

// leave removes this owner from the members.
func (s *store) leave(ctx context.Context) error {
	if err := s.rdb.ZRem(ctx, s.keys.LeaseMembers(), s.owner).Err(); err != nil {
		return fmt.Errorf("leave %s: %w", s.owner, err)
	}
	return nil
}
