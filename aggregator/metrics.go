package aggregator

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/internal/promreg"
	"github.com/pulsehq/pulse/metric"
)

// Outcomes of a record, each record counted under exactly one.
const (
	outcomeApplied     = "applied"        // aggregated with its own ts
	outcomeClamped     = "future_clamped" // aggregated at its receive time: ts too far ahead
	outcomeTooLate     = "too_late"       // not aggregated: older than the allowed lateness
	outcomeDuplicate   = "duplicate"      // not aggregated: id seen within the dedup window
	outcomeUndecodable = "undecodable"    // not aggregated: not an event
)

var outcomes = []string{outcomeApplied, outcomeClamped, outcomeTooLate, outcomeDuplicate, outcomeUndecodable}

type metrics struct {
	events      *prometheus.CounterVec
	stepSkipped *prometheus.CounterVec
	applySecs   prometheus.Histogram
	batch       prometheus.Histogram
	lagRecords  *prometheus.GaugeVec
	lagMillis   *prometheus.GaugeVec
	errors      *prometheus.CounterVec
	dedup       *prometheus.GaugeVec
	unsummed    prometheus.Counter

	outcome []prometheus.Counter // by index of outcomes
	skipped []prometheus.Counter // by catalog step index
}

func newMetrics(reg prometheus.Registerer, cat *metric.Catalog) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_aggregator_events_total", Help: "Records read by the aggregator, by outcome.",
		}, []string{"outcome"}),
		stepSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_aggregator_step_skipped_total", Help: "Events not counted in a step because its retention no longer holds their bucket.",
		}, []string{"step"}),
		applySecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pulse_aggregator_apply_seconds", Help: "Time to apply one commit to the store.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pulse_aggregator_batch_records", Help: "Records per commit.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		lagRecords: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pulse_aggregator_lag_records", Help: "Records of the shard not yet read, as of the last read.",
		}, []string{"shard"}),
		lagMillis: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pulse_aggregator_lag_millis", Help: "How far the shard's applied state is behind, ms, as the stream reported.",
		}, []string{"shard"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_aggregator_errors_total", Help: "Failed operations (read, apply, position, shards, trimmed, fenced: the worker lost its shard to a newer lease holder).",
		}, []string{"op"}),
		dedup: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pulse_aggregator_dedup_entries", Help: "Keys held in the shard's dedup window.",
		}, []string{"shard"}),
		unsummed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_aggregator_sum_refused_total",
			Help: "Values a sum or avg metric left out: a prop that is no number, or beyond ±1e9 (metric.MaxSumValue); once per metric.",
		}),
	}
	if reg != nil {
		m.register(reg)
	}
	for _, o := range outcomes {
		m.outcome = append(m.outcome, m.events.WithLabelValues(o))
	}
	for _, s := range cat.Steps {
		m.skipped = append(m.skipped, m.stepSkipped.WithLabelValues(s.Name))
	}
	return m
}

// register registers the collectors with reg. A second Aggregator on the
// registry (the live one is made anew on every namespace switch) continues
// the collectors of the first, under the project's policy (promreg).
func (m *metrics) register(reg prometheus.Registerer) {
	m.events = promreg.Register(reg, m.events)
	m.stepSkipped = promreg.Register(reg, m.stepSkipped)
	m.applySecs = promreg.Register(reg, m.applySecs)
	m.batch = promreg.Register(reg, m.batch)
	m.lagRecords = promreg.Register(reg, m.lagRecords)
	m.lagMillis = promreg.Register(reg, m.lagMillis)
	m.errors = promreg.Register(reg, m.errors)
	m.dedup = promreg.Register(reg, m.dedup)
	m.unsummed = promreg.Register(reg, m.unsummed)
}

// tally is what one batch adds to the counters, added in one go so the hot
// loop touches no shared atomics.
type tally struct {
	outcome [5]int64 // by index of outcomes
	skipped []int64  // by step index
	// unsummed counts props a sum or avg metric could not add.
	unsummed int64
}

func (m *metrics) add(t *tally) {
	for i, n := range t.outcome {
		if n > 0 {
			m.outcome[i].Add(float64(n))
		}
	}
	for i, n := range t.skipped {
		if n > 0 {
			m.skipped[i].Add(float64(n))
		}
	}
	if t.unsummed > 0 {
		m.unsummed.Add(float64(t.unsummed))
	}
}
