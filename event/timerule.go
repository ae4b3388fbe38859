package event

import "time"

// TimeRule is the event-time rule, evaluated against the receive time rt
// stamped at ingest (so a replay decides as the live run did). The
// aggregator buckets by it; the archive, which keeps every event whatever
// its ts, is partitioned by rt and uses the rule only to know which receive
// hours can hold the events of an event-time range (docs/architecture.md,
// "Event time, late and future events" and "The archive").
type TimeRule struct {
	// AllowedLateness is how far ts may lag rt and still count.
	AllowedLateness time.Duration
	// MaxFuture is how far ts may lead rt before it is set to rt.
	MaxFuture time.Duration
}

// DefaultTimeRule is the rule with the documented defaults: 24h late, 5m ahead.
func DefaultTimeRule() TimeRule {
	return TimeRule{AllowedLateness: 24 * time.Hour, MaxFuture: 5 * time.Minute}
}

// WithDefaults returns r with each zero or negative field set to
// DefaultTimeRule's.
func (r TimeRule) WithDefaults() TimeRule {
	def := DefaultTimeRule()
	if r.AllowedLateness <= 0 {
		r.AllowedLateness = def.AllowedLateness
	}
	if r.MaxFuture <= 0 {
		r.MaxFuture = def.MaxFuture
	}
	return r
}

// Verdict is what the rule decides for one event.
type Verdict int

// Verdicts of TimeRule.Judge.
const (
	OnTime        Verdict = iota // counted at its ts
	FutureClamped                // counted at rt: ts too far ahead
	TooLate                      // not counted: ts older than the allowed lateness
)

// Judge returns the time to count an event at and the verdict. Differences
// are taken as uint64 once ordered, so extreme values (which ingest refuses,
// but a stream may hold anything) cannot overflow into the wrong branch.
func (r TimeRule) Judge(ts, rt int64) (int64, Verdict) {
	if ts > rt && uint64(ts-rt) > uint64(r.MaxFuture.Milliseconds()) {
		return rt, FutureClamped
	}
	if rt > ts && uint64(rt-ts) > uint64(r.AllowedLateness.Milliseconds()) {
		return ts, TooLate
	}
	return ts, OnTime
}

// ReceivedWithin returns the receive-time range [lo, hi) (ms) that holds
// every event the rule counts at a time in the event-time range [from, to):
// one counted at its ts was received at most MaxFuture before ts and at most
// AllowedLateness after it; one counted at rt (future-clamped) is inside.
func (r TimeRule) ReceivedWithin(from, to int64) (lo, hi int64) {
	return satSub(from, r.MaxFuture.Milliseconds()), satAdd(to, r.AllowedLateness.Milliseconds())
}

func satSub(a, b int64) int64 {
	if a < minInt64+b {
		return minInt64
	}
	return a - b
}

func satAdd(a, b int64) int64 {
	if a > maxInt64-b {
		return maxInt64
	}
	return a + b
}

const (
	maxInt64 = 1<<63 - 1
	minInt64 = -1 << 63
)
