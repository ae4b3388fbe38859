package aggregator

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

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

	outcome []prometheus.Counter // by index of outcomes
	skipped []prometheus.Counter // by catalog step index
}

func newMetrics(reg prometheus.Registerer, cat *metric.Catalog) (*metrics, error) {
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
	}
	for _, o := range outcomes {
		m.outcome = append(m.outcome, m.events.WithLabelValues(o))
	}
	for _, s := range cat.Steps {
		m.skipped = append(m.skipped, m.stepSkipped.WithLabelValues(s.Name))
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.events, m.stepSkipped, m.applySecs, m.batch, m.lagRecords, m.lagMillis, m.errors, m.dedup} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("aggregator: register metrics: %w (one Aggregator per registry)", err)
			}
			return nil, fmt.Errorf("aggregator: register metrics: %w", err)
		}
	}
	return m, nil
}

// tally is what one batch adds to the counters, added in one go so the hot
// loop touches no shared atomics.
type tally struct {
	outcome [5]int64 // by index of outcomes
	skipped []int64  // by step index
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
}
