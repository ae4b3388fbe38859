package stream

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Publisher puts entries into a stream, returning nil once every entry is
// durable (ingest declares the same method set for what it needs).
type Publisher interface {
	Publish(ctx context.Context, entries []Entry) error
}

// PublisherFunc adapts a backend's Put, whose result types differ between
// backends, to a Publisher.
type PublisherFunc func(ctx context.Context, entries []Entry) error

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, entries []Entry) error { return f(ctx, entries) }

// TimedPublisher measures every publish, whatever the backend: the local
// stream has no metrics of its own, and Kinesis's pulse_kinesis_put_seconds
// times single PutRecords calls, not what a collect request waits for
// (linger, retries, several calls). Safe for concurrent use when next is.
type TimedPublisher struct {
	next    Publisher
	seconds prometheus.Observer
	errors  prometheus.Counter
}

var _ Publisher = (*TimedPublisher)(nil)

// NewTimedPublisher wraps next, exporting pulse_stream_put_seconds and
// pulse_stream_put_errors_total labelled backend on reg (none when nil).
func NewTimedPublisher(next Publisher, backend string, reg prometheus.Registerer) *TimedPublisher {
	secs := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "pulse_stream_put_seconds",
		Help:    "Time for a batch of ingested events to become durable in the stream (fsync'd locally, acknowledged by Kinesis), retries included.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"backend"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pulse_stream_put_errors_total",
		Help: "Batches the stream did not make durable (the collect request got 503 and is resent by the client).",
	}, []string{"backend"})
	if reg != nil {
		reg.MustRegister(secs, errs)
	}
	return &TimedPublisher{next: next, seconds: secs.WithLabelValues(backend), errors: errs.WithLabelValues(backend)}
}

// Publish publishes through next and records its duration, and its failure.
func (p *TimedPublisher) Publish(ctx context.Context, entries []Entry) error {
	start := time.Now()
	err := p.next.Publish(ctx, entries)
	p.seconds.Observe(time.Since(start).Seconds())
	if err != nil {
		p.errors.Inc()
	}
	return err
}
