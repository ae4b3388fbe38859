// Package redisagg is the Redis aggregate store: the one place that knows the
// key layout (Keys, docs/redis-keys.md) and the Lua scripts that apply a
// commit atomically with its checkpoints, write the delta log, and read
// series; it also drops a namespace's keys and compares two namespaces.
package redisagg

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/metric"
)

// MaxDeltaEntryBytes is the most bytes of JSON one delta-log entry holds
// (apply.lua's MAXBYTES): a commit's delta is split into entries of at most
// this size and at most 256 points, whatever its labels. 256 points of
// real labels (about 100 bytes each) fit, so it splits only entries of long
// labels, and it keeps a log of DeltaHistory entries near the 50 MB it
// holds with real labels.
const MaxDeltaEntryBytes = 32768

// ErrFenced is returned by Apply when a writer with a higher fencing token has
// already written the shard or one of its sites: the caller lost its lease.
var ErrFenced = errors.New("redisagg: fenced by a newer writer")

// ErrOverlap is returned by Apply when a site already holds part of the
// commit's range (First <= checkpoint < Last): applying it would count some
// records twice, skipping it would lose others.
var ErrOverlap = errors.New("redisagg: commit overlaps the applied range")

// Config configures a Store. Zero values mean the documented defaults.
type Config struct {
	// Namespace is the key namespace (replay builds into a new one); default "v1".
	Namespace string
	// MaxDimValues bounds the distinct values of one dimension in one bucket
	// of one metric; counts of further values go to metric.Other. Default 1000.
	MaxDimValues int
	// MaxDimBytes bounds the bytes of the distinct values of one dimension
	// in one bucket hash (the sum of their lengths, each at most
	// metric.MaxValueBytes); a new value past it goes to metric.Other like
	// one past MaxDimValues. Default 65536: 1,000 values of 64 bytes, far
	// above real sites (100 paths of 30 bytes are 3 KB), a quarter of
	// 1,000 values cut to 256 bytes.
	MaxDimBytes int
	// DeltaHistory is the number of entries kept per delta log (approximate
	// trimming); default 2000. An entry holds at most 256 points and 32 KiB
	// of JSON (MaxDeltaEntryBytes; a commit's delta is split over as many
	// entries as it needs), so a log holds at most about DeltaHistory x
	// 32 KiB (64 MiB by default), whatever the labels.
	DeltaHistory int64
	// NoDeltas turns off the delta log and its publishes (replay into a new
	// namespace has no live subscribers).
	NoDeltas bool
	// TopMinWidth is the narrowest step that keeps top-K sorted sets; finer
	// steps are too short-lived to be worth the memory. Default 1m.
	TopMinWidth time.Duration
	// IdleTTL is how long a site's checkpoint, and a site's metric's delta
	// counter and log, live after the last apply that wrote them (each apply
	// sets it again); default DefaultIdleTTL, negative: never expire. Buckets
	// expire with their step's retention regardless. Expiring the
	// checkpoint is safe once the shard positions passed what it guards
	// (docs/redis-keys.md "Checkpoints and positions"); the cost of a short
	// TTL is only a delta counter that restarts, for which subscribers get
	// a reset snapshot.
	IdleTTL time.Duration
	// Now is the clock used to skip buckets already past their retention;
	// default time.Now.
	Now func() time.Time
	// RowFiles, when set, keeps the Stats API's fact rows instead of
	// Redis (the embedded mode, package rowdir): the rows of the parts the
	// apply script applied are appended there after it, and RowLengths
	// and RowBytes read them there.
	RowFiles RowFiles
}

// RowFiles is where the fact rows live when not in Redis.
type RowFiles interface {
	AppendRows(site string, hour int64, rows []byte) (int64, error)
	RowLengths(ctx context.Context, site string, hours []int64) ([]int64, error)
	RowBytes(ctx context.Context, site string, hour, from, to int64) ([]byte, error)
}

// DefaultIdleTTL is Config.IdleTTL's default: a week, far longer than any
// commit stays half-applied (a crashed aggregator is replaced within a
// lease TTL), and long enough that a dashboard left open over a weekend on
// a quiet site still resumes from its delta log.
const DefaultIdleTTL = 7 * 24 * time.Hour

func (c Config) withDefaults() Config {
	if c.Namespace == "" {
		c.Namespace = "v1"
	}
	if c.MaxDimValues <= 0 {
		c.MaxDimValues = 1000
	}
	if c.MaxDimBytes <= 0 {
		c.MaxDimBytes = 65536
	}
	if c.DeltaHistory <= 0 {
		c.DeltaHistory = 2000
	}
	if c.TopMinWidth <= 0 {
		c.TopMinWidth = time.Minute
	}
	if c.IdleTTL == 0 {
		c.IdleTTL = DefaultIdleTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Stats are running totals of what Apply did.
type Stats struct {
	Commits    int64 // commits applied (including those fully skipped)
	Parts      int64 // site parts written
	Skipped    int64 // site parts skipped as already applied (redelivery)
	Overflowed int64 // dimension values folded into metric.Other by MaxDimValues or MaxDimBytes
	Expired    int64 // counters and HLL keys not written: bucket past retention
	Saturated  int64 // sums of sum and avg metrics held at ±metric.MaxScaled
}

// Store reads and writes the aggregates of one namespace. It is safe for
// concurrent use; writers of one shard must be serialized by the caller (the
// shard's lease), which fencing enforces.
type Store struct {
	rdb     redis.UniversalClient
	cat     *metric.Catalog
	cfg     Config
	keys    Keys
	cluster bool
	apply   *redis.Script
	read    *redis.Script

	commits, parts, skipped, overflowed, expired, saturated atomic.Int64
}

// New returns a Store over rdb for the metrics of cat.
func New(rdb redis.UniversalClient, cat *metric.Catalog, cfg Config) *Store {
	_, cluster := rdb.(*redis.ClusterClient)
	cfg = cfg.withDefaults()
	return &Store{
		rdb:     rdb,
		cat:     cat,
		cfg:     cfg,
		keys:    KeysFor(cfg.Namespace),
		cluster: cluster,
		apply:   redis.NewScript(applyLua),
		read:    redis.NewScript(readLua),
	}
}

// Stats returns running totals since New.
func (s *Store) Stats() Stats {
	return Stats{
		Commits:    s.commits.Load(),
		Parts:      s.parts.Load(),
		Skipped:    s.skipped.Load(),
		Overflowed: s.overflowed.Load(),
		Expired:    s.expired.Load(),
		Saturated:  s.saturated.Load(),
	}
}

// DeltaLogKey is Keys.DeltaLog in the Store's namespace.
func (s *Store) DeltaLogKey(site, m string) string { return s.keys.DeltaLog(site, m) }

// DeltaChannel is Keys.DeltaChannel in the Store's namespace.
func (s *Store) DeltaChannel(site, m string) string { return s.keys.DeltaChannel(site, m) }

// hasTop reports whether step st keeps top-K sorted sets.
func (s *Store) hasTop(st metric.Step) bool { return st.Width >= s.cfg.TopMinWidth }
