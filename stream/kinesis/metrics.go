package kinesis

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/internal/promreg"
)

// Results of a SubscribeToShard, for pulse_kinesis_subscriptions_total.
const (
	subOK      = "ok"
	subRefused = "refused"
	subFailed  = "failed"
)

type metrics struct {
	putSeconds      prometheus.Histogram
	putRetries      prometheus.Counter
	recordsPerPut   prometheus.Histogram
	eventsPerRecord prometheus.Histogram
	putFailures     *prometheus.CounterVec
	backpressure    prometheus.Counter
	millisBehind    *prometheus.GaugeVec
	corrupt         prometheus.Counter
	misplaced       prometheus.Counter
	outOfRange      prometheus.Counter
	subscriptions   *prometheus.CounterVec
	subscribed      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		putSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pulse_kinesis_put_seconds",
			Help:    "Duration of PutRecords calls.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 12),
		}),
		putRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_kinesis_put_retries_total",
			Help: "Kinesis records sent again after a retryable failure (throttling, internal failure).",
		}),
		recordsPerPut: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pulse_kinesis_records_per_put",
			Help:    "Kinesis records per PutRecords call.",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500},
		}),
		eventsPerRecord: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pulse_kinesis_events_per_record",
			Help:    "Entries packed into one Kinesis record (1 without aggregation).",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000},
		}),
		putFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_kinesis_put_failed_entries_total",
			Help: "Entries that Put reported as failed, by reason.",
		}, []string{"reason"}),
		backpressure: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_kinesis_backpressure_total",
			Help: "Puts refused with ErrBackpressure because the buffer was full.",
		}),
		millisBehind: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pulse_kinesis_millis_behind",
			Help: "MillisBehindLatest of the last GetRecords on each shard.",
		}, []string{"shard"}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_kinesis_corrupt_aggregates_total",
			Help: "Records with the KPL magic and checksum whose body did not decode; passed on as plain records.",
		}),
		misplaced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_kinesis_misplaced_entries_total",
			Help: "Entries of aggregated records that landed on another shard than packed for (a reshard), put again as plain records.",
		}),
		outOfRange: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_kinesis_out_of_range_records_total",
			Help: "User records of aggregated records read from a shard that does not own their hash key (re-put by the producer), dropped.",
		}),
		subscriptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_kinesis_subscriptions_total",
			Help: "SubscribeToShard calls of enhanced fan-out by result: ok (streaming), refused (ResourceInUse or LimitExceeded, retried), failed (at the call or mid-stream, retried).",
		}, []string{"result"}),
		subscribed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_kinesis_subscriptions_active",
			Help: "Enhanced fan-out subscriptions currently streaming (one per shard being read).",
		}),
	}
	for _, r := range []string{subOK, subRefused, subFailed} {
		m.subscriptions.WithLabelValues(r)
	}
	if reg != nil {
		// Shared, not refused, when registered before: pulse serve retries
		// a New that failed (the endpoint not up yet) on the same registry.
		m.putSeconds = promreg.Register(reg, m.putSeconds)
		m.putRetries = promreg.Register(reg, m.putRetries)
		m.recordsPerPut = promreg.Register(reg, m.recordsPerPut)
		m.eventsPerRecord = promreg.Register(reg, m.eventsPerRecord)
		m.putFailures = promreg.Register(reg, m.putFailures)
		m.backpressure = promreg.Register(reg, m.backpressure)
		m.millisBehind = promreg.Register(reg, m.millisBehind)
		m.corrupt = promreg.Register(reg, m.corrupt)
		m.misplaced = promreg.Register(reg, m.misplaced)
		m.outOfRange = promreg.Register(reg, m.outOfRange)
		m.subscriptions = promreg.Register(reg, m.subscriptions)
		m.subscribed = promreg.Register(reg, m.subscribed)
	}
	return m
}
