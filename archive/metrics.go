package archive

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/internal/promreg"
)

type metrics struct {
	created   prometheus.Counter
	existed   prometheus.Counter
	records   prometheus.Counter
	bytes     prometheus.Counter
	putErrors prometheus.Counter
	pending   prometheus.Gauge
	flush     prometheus.Histogram
	perFlush  prometheus.Histogram
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
			Help: "Encoded bytes the archive writer holds for objects not yet written: Parquet pages, the values of the pages being filled, dictionaries.",
		}),
		flush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pulse_archive_flush_seconds",
			Help:    "Time to encode and write the pending objects of one shard.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		perFlush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pulse_archive_flush_objects",
			Help:    "Objects one flush of a shard writes: its receive hours plus objects cut at MaxBytes, whatever ts clients send.",
			Buckets: []float64{1, 2, 3, 5, 10, 20, 50},
		}),
	}
	if reg == nil {
		return m
	}
	m.flush = promreg.Register(reg, m.flush)
	m.perFlush = promreg.Register(reg, m.perFlush)
	m.pending = promreg.Register(reg, m.pending)
	m.putErrors = promreg.Register(reg, m.putErrors)
	m.bytes = promreg.Register(reg, m.bytes)
	m.records = promreg.Register(reg, m.records)
	objects = promreg.Register(reg, objects)
	m.created = objects.WithLabelValues("created")
	m.existed = objects.WithLabelValues("existed")
	return m
}
