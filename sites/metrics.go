package sites

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/internal/promreg"
)

type metrics struct {
	known    prometheus.Gauge
	admitted prometheus.Counter
	added    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		known: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_sites_known",
			Help: "Sites this node admits: those of --sites and those of the shared set it has read.",
		}),
		admitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_sites_admitted_total",
			Help: "New sites this node admitted in open mode (--sites '*'); refusals are in pulse_ingest_rejected_total{reason=\"site_cap\"|\"site_rate\"}.",
		}),
		added: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_sites_added_total",
			Help: "Sites an admin added through this node (POST /v1/admin/sites).",
		}),
	}
	if reg != nil {
		m.known = promreg.Register(reg, m.known)
		m.admitted = promreg.Register(reg, m.admitted)
		m.added = promreg.Register(reg, m.added)
	}
	return m
}
