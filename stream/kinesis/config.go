package kinesis

import (
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Stream. Zero values mean the documented defaults.
type Config struct {
	// Stream is the Kinesis stream name (required).
	Stream string
	// Client is built by the caller from the SDK's standard configuration
	// (config.LoadDefaultConfig: region, credentials chain,
	// AWS_ENDPOINT_URL_KINESIS) (required).
	Client *kinesis.Client

	// Linger is how long the producer waits for more entries before it sends
	// what it has, default 5ms. Entries arriving within it share Kinesis
	// records (aggregation) and PutRecords calls.
	Linger time.Duration
	// MaxBuffered caps the entries accepted by Put and not yet acknowledged
	// or failed, default 100,000. A Put that would pass it fails at once with
	// ErrBackpressure.
	MaxBuffered int
	// NoAggregation turns KPL aggregation off: each entry is one Kinesis
	// record. By default entries bound for the same shard are packed into
	// aggregated records (stream/kpl), which consumers following the KCL
	// de-aggregate.
	NoAggregation bool
	// MaxAggregateBytes caps an aggregated record, partition key included,
	// default and at most 1 MiB (the Kinesis record limit).
	MaxAggregateBytes int
	// MaxAggregateCount caps the entries in one aggregated record, default
	// 10,000, at most 100,000.
	MaxAggregateCount int
	// MaxInFlight caps concurrent PutRecords calls, default 8.
	MaxInFlight int
	// MaxRetries is how many times records that Kinesis refused with a
	// retryable error are sent again before their entries fail, default 10.
	// Negative means no retries.
	MaxRetries int
	// RetryBase and RetryMax bound the exponential backoff with full jitter
	// between retries: the n-th waits a random time in [0, min(RetryMax,
	// RetryBase*2^n)). Defaults 100ms and 5s.
	RetryBase time.Duration
	RetryMax  time.Duration
	// ShardRefresh is how often the producer reloads the shard map it uses
	// to aggregate per shard, default 1 minute; it also reloads it as soon
	// as a record lands on a shard other than the one it was packed for.
	ShardRefresh time.Duration
	// DrainTimeout bounds how long shutdown (Run's context done, or Close)
	// keeps sending buffered entries, default 10s. Entries still unsent then
	// fail; none is reported as stored.
	DrainTimeout time.Duration

	// PollEvery is the least time between two GetRecords calls on one shard,
	// default 200ms (Kinesis allows 5 per second per shard). When a shard
	// has nothing new the interval doubles, up to MaxPollEvery.
	PollEvery time.Duration
	// MaxPollEvery caps the adaptive poll interval of an idle shard,
	// default 1s.
	MaxPollEvery time.Duration
	// ReadWait is how long Read polls an idle shard before it returns an
	// empty batch, default 1s.
	ReadWait time.Duration

	// EFOConsumer turns enhanced fan-out on: New registers a stream
	// consumer of this name (or reuses the one registered under it) and
	// Read and ReadFrom get records pushed by SubscribeToShard (about 70ms
	// after a put, a dedicated 2 MB/s per shard per consumer) instead of
	// polling GetRecords (200ms or more, 2 MB/s per shard shared by every
	// reader). Positions and every other contract of Read are the same.
	// The subscription serves the reader that follows a shard; a Read or
	// ReadFrom elsewhere while it is followed polls (see cursorFor).
	// Empty (the default) means polling. The consumer is billed per
	// consumer-shard hour while registered; this package never
	// deregisters it.
	EFOConsumer string
	// EFOClientOptions are applied to the client of each subscription.
	// Each subscription gets a client of its own, a copy of Client's
	// options: the SDK's event stream decoder belongs to the client's
	// protocol and is not safe for concurrent streams. Tests against
	// kinesis-local use it to skip the initial-response event that the
	// emulator never sends; against Kinesis leave it empty.
	EFOClientOptions []func(*kinesis.Options)

	// Logger gets warnings (corrupt aggregated records, shard map reloads
	// failing); nil means don't log.
	Logger *slog.Logger
	// Registerer gets the pulse_kinesis_* metrics; nil means don't register.
	Registerer prometheus.Registerer
}

// Kinesis limits.
const (
	maxRecordBytes  = 1 << 20 // data plus partition key
	maxCallRecords  = 500
	maxCallBytes    = 5 << 20
	maxKeyRunes     = 256
	maxGetRecords   = 10000
	defaultReadSize = 1000
)

func (c Config) withDefaults() Config {
	if c.Linger <= 0 {
		c.Linger = 5 * time.Millisecond
	}
	if c.MaxBuffered <= 0 {
		c.MaxBuffered = 100_000
	}
	if c.MaxAggregateBytes <= 0 || c.MaxAggregateBytes > maxRecordBytes {
		c.MaxAggregateBytes = maxRecordBytes
	}
	if c.MaxAggregateCount <= 0 {
		c.MaxAggregateCount = 10_000
	}
	c.MaxAggregateCount = min(c.MaxAggregateCount, maxSub)
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 8
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 10
	}
	if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.ShardRefresh <= 0 {
		c.ShardRefresh = time.Minute
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.PollEvery <= 0 {
		c.PollEvery = 200 * time.Millisecond
	}
	if c.MaxPollEvery <= 0 {
		c.MaxPollEvery = time.Second
	}
	c.MaxPollEvery = max(c.MaxPollEvery, c.PollEvery)
	if c.ReadWait <= 0 {
		c.ReadWait = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
