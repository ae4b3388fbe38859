package archive

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	created   prometheus.Counter
	existed   prometheus.Counter
	records   prometheus.Counter
	bytes     prometheus.Counter
	putErrors prometheus.Counter
	pending   prometheus.Gauge
	flush     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	objects := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pulse_archive_objects_total",
		Help: "Archive objects put, by result: created, or existed (a rewrite after a restart, a no-op).",
	}, []string{"result"})
	m := &metrics{
		created: objects.WithLabelValues("created"),
		existed: objects.WithLabelValues("existed"),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_archive_records_total",
			Help: "Events in archive objects this process created.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_archive_bytes_total",
			Help: "Bytes of archive objects this process created.",
		}),
		putErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_archive_put_errors_total",
			Help: "Failed archive object puts; the flush is retried by the archiver.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_archive_pending_bytes",
			Help: "Raw record bytes buffered in the archive writer, not yet written.",
		}),
		flush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pulse_archive_flush_seconds",
			Help:    "Time to encode and write the pending objects of one shard.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
	}
	if reg == nil {
		return m
	}
	m.flush = register(reg, m.flush)
	m.pending = register(reg, m.pending)
	m.putErrors = register(reg, m.putErrors)
	m.bytes = register(reg, m.bytes)
	m.records = register(reg, m.records)
	objects = register(reg, objects)
	m.created = objects.WithLabelValues("created")
	m.existed = objects.WithLabelValues("existed")
	return m
}

// register registers c, or returns the collector already registered under
// the same name, so two writers on one registry share their metrics.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a programming error: conflicting metric definitions
	}
	return c
}
