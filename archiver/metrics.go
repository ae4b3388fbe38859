package archiver

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/internal/promreg"
)

// metrics of the archiver. Objects written (pulse_archive_objects_total,
// by result created|existed) are counted by the archive writer, which
// registers on the same registry.
type metrics struct {
	events prometheus.Counter
	errors *prometheus.CounterVec
	active prometheus.Gauge
}

var lagDesc = prometheus.NewDesc("pulse_archive_lag_seconds",
	"Age of the oldest record read from the shard but not yet durable in the archive (0 when none).",
	[]string{"shard"}, nil)

func newMetrics(reg prometheus.Registerer, a *Archiver) *metrics {
	m := &metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_archive_events_total",
			Help: "Events made durable in the archive by this process (a rebuild after a restart counts again).",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_archive_errors_total",
			Help: "Archiver failures by operation: shards, read, decode (record skipped), trimmed (records lost to stream retention before archiving), add, flush, checkpoint.",
		}, []string{"op"}),
		// Across a fleet the sum is 1, or the archive falls behind.
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_archive_active",
			Help: "1 while this instance archives (alone, or as the group's holder of the archive lease), 0 while it stands by.",
		}),
	}
	if reg == nil {
		return m
	}
	m.events = promreg.Register(reg, m.events)
	m.errors = promreg.Register(reg, m.errors)
	m.active = promreg.Register(reg, m.active)
	// The lag collector reads Lag at scrape time; a second archiver on the
	// same registry keeps the first one's.
	_ = reg.Register(lagCollector{a})
	return m
}

// lagCollector exports Archiver.Lag per shard at scrape time.
type lagCollector struct{ a *Archiver }

func (c lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc }

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	for shard, d := range c.a.Lag() {
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, d.Seconds(), shard)
	}
}
