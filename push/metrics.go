package push

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connections, subscriptions, topics     prometheus.Gauge
	deltasSent, merges, slowCloses, resets prometheus.Counter
	floodCloses                            prometheus.Counter
	unauthRefused                          *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "pulse_push_connections", Help: "Open WebSocket connections."}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pulse_push_subscriptions", Help: "Live subscriptions over all connections."}),
		topics:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "pulse_push_topics", Help: "Distinct subscription keys computed once each."}),
		deltasSent:    prometheus.NewCounter(prometheus.CounterOpts{Name: "pulse_push_deltas_sent_total", Help: "Delta messages written to clients."}),
		merges:        prometheus.NewCounter(prometheus.CounterOpts{Name: "pulse_push_merges_total", Help: "Points merged into an already queued point of a slow client."}),
		slowCloses:    prometheus.NewCounter(prometheus.CounterOpts{Name: "pulse_push_slow_closes_total", Help: "Connections closed with 4008 slow consumer."}),
		resets:        prometheus.NewCounter(prometheus.CounterOpts{Name: "pulse_push_resets_total", Help: "Reset snapshots sent (resume not possible, gap, queue overflow)."}),
		floodCloses:   prometheus.NewCounter(prometheus.CounterOpts{Name: "pulse_push_flood_closes_total", Help: "Connections closed with 1008 for sending messages faster than MessageRate."}),
		unauthRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pulse_push_unauth_refused_total",
			Help: "WebSocket upgrades without a token refused with 429, by the cap reached (per_address: MaxUnauthPerAddr, total: MaxUnauth)."}, []string{"reason"}),
	}
	// Both reasons are exported from the start, at 0, so an alert on the
	// rate has a series before the first refusal.
	m.unauthRefused.WithLabelValues(refusedPerAddr)
	m.unauthRefused.WithLabelValues(refusedTotal)
	if reg != nil {
		reg.MustRegister(m.connections, m.subscriptions, m.topics, m.deltasSent, m.merges, m.slowCloses, m.resets, m.floodCloses, m.unauthRefused)
	}
	return m
}
