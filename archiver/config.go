package archiver

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/stream"
)

// Source is the stream the archiver reads: stream/local and stream/kinesis
// both satisfy it.
type Source interface {
	Shards(ctx context.Context) ([]stream.Shard, error)
	Read(ctx context.Context, shard, after string, limit int) (stream.Batch, error)
}

// Checkpoint is the archive position of one shard.
type Checkpoint struct {
	// Durable: every record of the shard through this seq is in the
	// archive ("" when none is).
	Durable string
	// FlushAt is a flush boundary recorded before flushing ("" when none):
	// a restart flushes right after this record, before adding any later.
	FlushAt string
}

// Checkpoints stores the Checkpoint of each shard. Load of a shard never
// saved returns the zero Checkpoint.
type Checkpoints interface {
	Load(ctx context.Context, shard string) (Checkpoint, error)
	Save(ctx context.Context, shard string, c Checkpoint) error
}

// Config configures an Archiver. Zero values mean the defaults.
type Config struct {
	// Writer configures the archive writer (object size, buffer bound).
	// Its MaxAge, Now, Logger and Registerer are taken from this Config
	// when unset there.
	Writer archive.WriterConfig
	// MaxAge is the flush cadence: how long a buffered record may wait
	// before its object is written. Default Writer.MaxAge, else 5 minutes.
	MaxAge time.Duration
	// DiscoverEvery is how often the shard list is refreshed; default 10s.
	DiscoverEvery time.Duration
	// ReadLimit is the most records asked per Read; default 1000.
	ReadLimit int
	// StopTimeout bounds the final flush when Run's context is cancelled;
	// default 10s. What it cannot flush is redone from the checkpoint.
	StopTimeout time.Duration
	// Backoff is the first wait after a failure, doubling per consecutive
	// failure up to 10s; default 100ms.
	Backoff time.Duration
	// Now gives the time for MaxAge and Lag; default time.Now.
	Now func() time.Time
	// Logger; nil means don't log.
	Logger *slog.Logger
	// Registerer receives the archiver's and its writer's metrics; nil
	// means not registered.
	Registerer prometheus.Registerer
}

const (
	defaultMaxAge        = 5 * time.Minute
	defaultDiscoverEvery = 10 * time.Second
	defaultReadLimit     = 1000
	defaultStopTimeout   = 10 * time.Second
	defaultBackoff       = 100 * time.Millisecond
	maxBackoff           = 10 * time.Second
)

func (c Config) withDefaults() Config {
	if c.MaxAge <= 0 {
		c.MaxAge = c.Writer.MaxAge
	}
	if c.MaxAge <= 0 {
		c.MaxAge = defaultMaxAge
	}
	c.Writer.MaxAge = c.MaxAge
	if c.DiscoverEvery <= 0 {
		c.DiscoverEvery = defaultDiscoverEvery
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = defaultReadLimit
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = defaultStopTimeout
	}
	if c.Backoff <= 0 {
		c.Backoff = defaultBackoff
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Writer.Now == nil {
		c.Writer.Now = c.Now
	}
	if c.Writer.Logger == nil {
		c.Writer.Logger = c.Logger
	}
	if c.Writer.Registerer == nil {
		c.Writer.Registerer = c.Registerer
	}
	return c
}

// tick is how often a worker asks the writer whether its shard is due: a
// tenth of MaxAge, so a flush comes at most 10% late, within [5ms, 1s].
func (c Config) tick() time.Duration {
	return min(max(c.MaxAge/10, 5*time.Millisecond), time.Second)
}
