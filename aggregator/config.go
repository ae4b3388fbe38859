package aggregator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/stream"
)

// Source is the stream the aggregator reads: stream/local or Kinesis.
type Source interface {
	Shards(ctx context.Context) ([]stream.Shard, error)
	// Read returns records of shard after the sequence number after ("" is
	// the shard's start), at most limit of them. It may wait a short while
	// for new records and return an empty batch.
	Read(ctx context.Context, shard, after string, limit int) (stream.Batch, error)
	// ReadFrom is Read from the record numbered from, inclusive: the dedup
	// rebuild starts at a record, and on Kinesis the number before a
	// record is usually no record at all.
	ReadFrom(ctx context.Context, shard, from string, limit int) (stream.Batch, error)
}

// Store is the aggregate store: it applies a commit (aggregates and
// position) atomically and tells where a shard stands.
type Store interface {
	Apply(ctx context.Context, c *metric.Commit) error
	Position(ctx context.Context, shard string) (metric.Position, error)
	// Pending returns the end of a commit that may be applied to some of
	// its parts only (Redis Cluster), or "": the next commit must end there.
	Pending(ctx context.Context, shard string) (string, error)
	// End records, with the writer's fence, that shard was applied to its
	// end; Ended reports which of shards were. They are state every
	// instance of a group sees: a child shard of a reshard starts only
	// after its parents ended, whoever applied them.
	End(ctx context.Context, shard string, fence int64) error
	Ended(ctx context.Context, shards []string) (map[string]bool, error)
}

// Config configures an Aggregator. Zero values mean the defaults given.
type Config struct {
	// Catalog is what to aggregate; nil means metric.Builtins() with
	// metric.DefaultSteps().
	Catalog *metric.Catalog
	// DedupWindow is how long (in receive time) an event id is remembered
	// after it was last seen; default 10m.
	DedupWindow time.Duration
	// AllowedLateness is how far (RT - ts) an event may lag its receive
	// time and still be aggregated; default 24h. Keep it at least 1h:
	// offline trackers deliver late (docs/architecture.md, "Event time,
	// late and future events").
	AllowedLateness time.Duration
	// MaxFuture is how far ahead of its receive time an event's ts may be
	// before it is clamped to the receive time; default 5m.
	MaxFuture time.Duration
	// MaxBatch is the most records read from the stream at once; default 10000.
	MaxBatch int
	// MaxCommit is the most records applied in one commit; default 50000.
	// Reads accumulate into one commit while the previous apply is in
	// flight; store work per commit grows with its distinct keys, not its
	// records, so bigger commits cost less per event under load.
	MaxCommit int
	// MaxCommitBytes bounds the record data (sum of Record.Data lengths)
	// folded into one commit; default 64 MiB. It bounds the commit's
	// memory when records are large.
	MaxCommitBytes int
	// MinCommitInterval is how long a caught-up worker keeps folding newly
	// arrived records into the next commit after handing one over, so that
	// a steady load makes one commit per interval instead of one per read;
	// default 50ms, negative: none. Store work grows with a commit's
	// distinct keys, not its records: Redis spends about twice per event
	// on 500-event commits what it spends on 2,500-event ones
	// (BenchmarkApplyLive). It delays an event's
	// apply by at most the interval (freshness), and never once the
	// stream goes quiet (a read that brings nothing ends it).
	MinCommitInterval time.Duration
	// DiscoverEvery is how often the shard list is refreshed; default 10s.
	DiscoverEvery time.Duration
	// Now is used only to time applies and MinCommitInterval; nil means
	// time.Now. Aggregation decisions never read it (they depend on
	// receive times only).
	Now func() time.Time
	// Logger nil means don't log.
	Logger *slog.Logger
	// Registerer nil means don't register metrics. Aggregators on one
	// registry share the collectors of the first (internal/promreg): the
	// live one is made anew on every namespace switch.
	Registerer prometheus.Registerer
}

// Lag is how far one shard's applied state is behind the stream's tip, as
// the stream reported with the last read.
type Lag struct {
	Records int64 // records not yet read; -1 when the stream cannot tell
	Millis  int64
}

// Aggregator folds stream shards into the aggregate store, exactly once.
// It is safe for concurrent use; Run is called once.
type Aggregator struct {
	src  Source
	st   Store
	cfg  Config
	log  *slog.Logger
	met  *metrics
	plan *plan

	backoffMin time.Duration // backoffMinDefault; tests shorten it

	mu  sync.Mutex
	lag map[string]Lag
}

// Backoff after a failed read or apply, doubling per consecutive failure.
const (
	backoffMinDefault = 50 * time.Millisecond
	backoffMax        = 5 * time.Second
)

// New returns an Aggregator reading src and applying into st.
func New(src Source, st Store, cfg Config) (*Aggregator, error) {
	if src == nil || st == nil {
		return nil, errors.New("aggregator: source and store are required")
	}
	if cfg.Catalog == nil {
		c, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
		if err != nil {
			return nil, fmt.Errorf("aggregator: builtin catalog: %w", err)
		}
		cfg.Catalog = c
	}
	if n := len(cfg.Catalog.Steps); n == 0 || n > 64 {
		return nil, fmt.Errorf("aggregator: catalog has %d steps, want 1 to 64", n)
	}
	rule := event.DefaultTimeRule() // shared with the archive
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"DedupWindow", &cfg.DedupWindow, 10 * time.Minute},
		{"AllowedLateness", &cfg.AllowedLateness, rule.AllowedLateness},
		{"MaxFuture", &cfg.MaxFuture, rule.MaxFuture},
		{"DiscoverEvery", &cfg.DiscoverEvery, 10 * time.Second},
	} {
		if *d.v < 0 {
			return nil, fmt.Errorf("aggregator: %s is %v, must not be negative (0 means the default %v)", d.name, *d.v, d.def)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	switch {
	case cfg.MinCommitInterval == 0:
		cfg.MinCommitInterval = 50 * time.Millisecond
	case cfg.MinCommitInterval < 0:
		cfg.MinCommitInterval = 0
	}
	if cfg.MaxBatch < 0 {
		return nil, fmt.Errorf("aggregator: MaxBatch is %d, must not be negative (0 means 10000)", cfg.MaxBatch)
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 10000
	}
	if cfg.MaxCommit < 0 || cfg.MaxCommitBytes < 0 {
		return nil, fmt.Errorf("aggregator: MaxCommit %d and MaxCommitBytes %d must not be negative (0 means the default)", cfg.MaxCommit, cfg.MaxCommitBytes)
	}
	if cfg.MaxCommit == 0 {
		cfg.MaxCommit = max(50000, cfg.MaxBatch)
	}
	// A read never exceeds what one commit may hold.
	cfg.MaxBatch = min(cfg.MaxBatch, cfg.MaxCommit)
	if cfg.MaxCommitBytes == 0 {
		cfg.MaxCommitBytes = 64 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	met := newMetrics(cfg.Registerer, cfg.Catalog)
	return &Aggregator{
		src: src, st: st, cfg: cfg, log: log, met: met,
		plan: newPlan(cfg.Catalog, event.TimeRule{AllowedLateness: cfg.AllowedLateness, MaxFuture: cfg.MaxFuture}),
		lag:  map[string]Lag{}, backoffMin: backoffMinDefault,
	}, nil
}

// Lag returns the lag of every shard worked on so far.
func (a *Aggregator) Lag() map[string]Lag {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]Lag, len(a.lag))
	for k, v := range a.lag {
		out[k] = v
	}
	return out
}

func (a *Aggregator) setLag(shard string, l Lag) {
	a.mu.Lock()
	a.lag[shard] = l
	a.mu.Unlock()
	a.met.lagRecords.WithLabelValues(shard).Set(float64(l.Records))
	a.met.lagMillis.WithLabelValues(shard).Set(float64(l.Millis))
}
