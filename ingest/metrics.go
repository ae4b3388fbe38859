package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/event"
)

type metrics struct {
	events   *prometheus.CounterVec // result
	rejected *prometheus.CounterVec // reason
	requests *prometheus.CounterVec // code
	seconds  prometheus.Histogram
	inflight prometheus.Gauge
	overload prometheus.Counter

	// Resolved once: the labels of almost every request.
	accepted    prometheus.Counter // events{result="accepted"}
	accepted202 prometheus.Counter // requests{code="202"}
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_ingest_events_total",
			Help: "Events received, by result: accepted (durable in the stream) or rejected.",
		}, []string{"result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_ingest_rejected_total",
			Help: "Refusals by reason: a field name (props, url, type, site, ..., and revenue or engagement on /api/event), json, depth or object for one event; site_not_allowed (not a known site), site_cap or site_rate (open site list: the cap of sites, or the rate of new sites, reached) or write_key for one event refused by the access rules; overload, unavailable or canceled for the events of a request refused with 503; too_large, too_many, malformed, empty, encoding or origin once per body refused as a whole.",
		}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_ingest_requests_total",
			Help: "Collect requests by HTTP status.",
		}, []string{"code"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pulse_ingest_request_seconds",
			Help:    "Time to answer a collect request, publish included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_ingest_inflight_events",
			Help: "Events admitted and not yet durable in the stream.",
		}),
		overload: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_ingest_overload_total",
			Help: "Requests refused with 503 because MaxInFlight events were already waiting for the stream.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.rejected, m.requests, m.seconds, m.inflight, m.overload)
	}
	m.accepted = m.events.WithLabelValues("accepted")
	m.accepted202 = m.requests.WithLabelValues("202")
	return m
}

// rejectEvents counts events refused one by one.
func (m *metrics) rejectEvents(rs []event.Reject) {
	if len(rs) == 0 {
		return
	}
	m.events.WithLabelValues("rejected").Add(float64(len(rs)))
	for _, r := range rs {
		m.rejected.WithLabelValues(r.Reason).Inc()
	}
}

// refuse counts n events refused together for reason.
func (m *metrics) refuse(reason string, n int) {
	m.events.WithLabelValues("rejected").Add(float64(n))
	m.rejected.WithLabelValues(reason).Add(float64(n))
}
