// Package kinesis is the Amazon Kinesis Data Streams backend of the stream:
// a producer that batches entries into PutRecords calls, packing those bound
// for one shard into KPL aggregated records (stream/kpl), retrying only the
// records Kinesis refused, and acknowledging an entry only once Kinesis has
// stored it; and a reader that polls GetRecords per shard, keeps the shard
// iterator across calls and de-aggregates KPL records into user records
// whose positions resume exactly, even inside an aggregated record.
// Optionally (Config.EFOConsumer) the reader gets records pushed by
// enhanced fan-out subscriptions (SubscribeToShard) instead, with the same
// positions and contract.
//
// A Stream is safe for concurrent use. Its producer goroutines run inside
// Run; Put waits for Run to send its entries.
package kinesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Errors callers branch on.
var (
	// ErrBackpressure: the producer's buffer is full; nothing of the Put
	// was accepted. Ingest answers 503 with Retry-After.
	ErrBackpressure = errors.New("kinesis: producer buffer full")
	// ErrRecordTooLarge: an entry's data plus partition key exceed the
	// Kinesis record limit of 1 MiB. It is never sent.
	ErrRecordTooLarge = errors.New("kinesis: record over 1 MiB")
	// ErrInvalidKey: a partition key is empty or over 256 characters.
	ErrInvalidKey = errors.New("kinesis: partition key must have 1 to 256 characters")
	// ErrClosed: the Stream is closed or shutting down.
	ErrClosed = errors.New("kinesis: stream closed")
)

// Stream produces to and reads from one Kinesis stream.
type Stream struct {
	cfg    Config
	client *kinesis.Client
	log    *slog.Logger
	m      *metrics

	shards       atomic.Pointer[shardMap]
	ranges       atomic.Pointer[map[string][2]hashKey] // every listed shard's hash key range
	closedShards atomic.Pointer[map[string]bool]       // shards closed at the last listing
	refreshShard chan struct{}                         // cap 1: ask Run to reload the shard map

	buffered atomic.Int64 // entries accepted and not yet finished

	// mu guards the producer's buffer.
	mu      sync.Mutex
	closed  bool
	open    map[string]*record // aggregated records being filled, by shard
	ready   []*record          // records complete, waiting for a PutRecords call
	readyN  int                // bytes of ready
	firstAt time.Time          // when the oldest unsent entry arrived; zero when none
	wake    chan struct{}      // cap 1: Put added entries

	running   atomic.Bool
	stop      chan struct{} // closed by Close
	runDone   chan struct{} // closed when Run returns
	closeOnce sync.Once

	cursorsMu sync.Mutex
	cursors   map[string]*cursor
	polled    map[string]*cursor // with enhanced fan-out, for reads elsewhere (cursorFor)

	// Enhanced fan-out (efo.go): consumerARN is "" when polling.
	consumerARN string
	subHTTP     *awshttp.BuildableClient // the client's HTTP client without its total timeout; nil: the client's own
	subCtx      context.Context          // parent of every subscription, done at Close
	subCancel   context.CancelFunc
	subMu       sync.Mutex // guards subClosed and subWG.Add
	subClosed   bool
	subWG       sync.WaitGroup
}

// New checks the configuration and loads the stream's shard map (the
// stream must exist). Run must be running for Put to complete.
func New(ctx context.Context, cfg Config) (*Stream, error) {
	if cfg.Stream == "" {
		return nil, errors.New("kinesis: Config.Stream is required")
	}
	if cfg.Client == nil {
		return nil, errors.New("kinesis: Config.Client is required")
	}
	cfg = cfg.withDefaults()
	s := &Stream{
		cfg:          cfg,
		client:       cfg.Client,
		log:          cfg.Logger,
		m:            newMetrics(cfg.Registerer),
		refreshShard: make(chan struct{}, 1),
		open:         make(map[string]*record),
		wake:         make(chan struct{}, 1),
		stop:         make(chan struct{}),
		runDone:      make(chan struct{}),
		cursors:      make(map[string]*cursor),
		polled:       make(map[string]*cursor),
	}
	if err := s.refreshShards(ctx); err != nil {
		return nil, fmt.Errorf("kinesis: open stream %s: %w", cfg.Stream, err)
	}
	if cfg.EFOConsumer != "" {
		arn, err := s.registerConsumer(ctx)
		if err != nil {
			return nil, fmt.Errorf("kinesis: open stream %s: enhanced fan-out: %w", cfg.Stream, err)
		}
		s.consumerARN = arn
		// A subscription's response streams for up to 5 minutes: a total
		// request timeout (the server gives its Kinesis client one, for
		// every other call) would cut each one short. Dial and response
		// header timeouts stay.
		if bc, ok := cfg.Client.Options().HTTPClient.(*awshttp.BuildableClient); ok && bc.GetTimeout() > 0 {
			s.subHTTP = bc.WithTimeout(0)
		}
	}
	// Subscriptions outlive the Reads that start them, so they hang off
	// the Stream, not a Read's context.
	s.subCtx, s.subCancel = context.WithCancel(context.Background())
	return s, nil
}

// Close stops accepting Puts. When Run is running, Close asks it to send
// what is buffered (within DrainTimeout) and waits for it to return;
// otherwise buffered entries fail with ErrClosed. Safe to call twice.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stop)
		s.closeSubscriptions()
	})
	if s.running.Load() {
		<-s.runDone
		return nil
	}
	s.failBuffered(ErrClosed)
	return nil
}

// failBuffered fails every entry still in the buffer.
func (s *Stream) failBuffered(err error) {
	s.mu.Lock()
	recs := s.takeAll()
	s.mu.Unlock()
	for _, r := range recs {
		s.fail(r, err, "closed")
	}
}
