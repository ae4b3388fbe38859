package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/ingest"
	"github.com/pulsehq/pulse/stream"
)

// timedPublisher measures every put of ingest into the stream, whatever the
// backend: the local stream has no metrics of its own, and Kinesis's
// pulse_kinesis_put_seconds times single PutRecords calls, not what a
// collect request waits for (linger, retries, several calls).
type timedPublisher struct {
	next    ingest.Publisher
	seconds prometheus.Observer
	errors  prometheus.Counter
}

func newTimedPublisher(next ingest.Publisher, backend string, reg prometheus.Registerer) ingest.Publisher {
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
	return &timedPublisher{next: next, seconds: secs.WithLabelValues(backend), errors: errs.WithLabelValues(backend)}
}

func (p *timedPublisher) Publish(ctx context.Context, entries []stream.Entry) error {
	start := time.Now()
	err := p.next.Publish(ctx, entries)
	p.seconds.Observe(time.Since(start).Seconds())
	if err != nil {
		p.errors.Inc()
	}
	return err
}

// streamBackendName is the backend label of cfg.Stream.
func streamBackendName(s string) string {
	if s == "local" {
		return "local"
	}
	return "kinesis"
}
