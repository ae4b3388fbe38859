package loadgen

import (
	"slices"
	"sort"
	"time"
)

// Durations is a sorted set of latencies.
type Durations []time.Duration

// SortedDurations sorts d in place and returns it as Durations.
func SortedDurations(d []time.Duration) Durations {
	slices.Sort(d)
	return Durations(d)
}

// Percentile returns the p-th percentile (0 < p <= 100) by the nearest-rank
// rule that Result.Percentile uses, so every figure the bench prints is
// computed the same way; 0 when empty.
func (d Durations) Percentile(p float64) time.Duration {
	return Result{latencies: d}.Percentile(p)
}

// Mark is a point of a publisher's history: at At, Cum units (events, or
// messages) had been published or acknowledged in total.
type Mark struct {
	At  time.Time
	Cum int64
}

// Reading is what a subscriber saw: at At it received a message that brought
// its watermark (the running total it displays) to Total.
type Reading struct {
	At    time.Time
	Total int64
}

// AckMarks turns a publisher's acknowledgements into marks in the order they
// were acknowledged: mark k says that by Done of the k-th 2xx answer, the sum
// of the events of all 2xx answers so far had been acknowledged. This is the
// reference of the freshness watermark (see Lags).
func AckMarks(acks []Ack) []Mark {
	ok := okAcks(acks)
	sort.SliceStable(ok, func(a, b int) bool { return ok[a].Done.Before(ok[b].Done) })
	return cumMarks(ok, func(a Ack) time.Time { return a.Done })
}

// SendMarks turns a publisher's requests into marks in the order they were
// scheduled: mark k says that at the scheduled send time of the k-th request
// answered 2xx, the events of it and of every earlier 2xx request had been
// published. Lags against these measure publish-to-receipt latency.
func SendMarks(acks []Ack) []Mark {
	ok := okAcks(acks)
	sort.SliceStable(ok, func(a, b int) bool { return ok[a].Index < ok[b].Index })
	return cumMarks(ok, func(a Ack) time.Time { return a.Sent })
}

func okAcks(acks []Ack) []Ack {
	ok := make([]Ack, 0, len(acks))
	for _, a := range acks {
		if a.OK() {
			ok = append(ok, a)
		}
	}
	return ok
}

func cumMarks(acks []Ack, at func(Ack) time.Time) []Mark {
	marks := make([]Mark, 0, len(acks))
	var cum int64
	for _, a := range acks {
		cum += int64(a.Events)
		marks = append(marks, Mark{At: at(a), Cum: cum})
	}
	return marks
}

// Lags computes the watermark delay of every mark: the time from the mark to
// the first reading whose total (or any earlier reading's: a watermark does
// not go back) reaches the mark's Cum. It does not identify events, only
// counts: a reading that reaches Cum may include events published after the
// mark and miss an earlier one, so it is exact only when the subscriber sees
// events in publication order, and otherwise a close estimate. A reading
// before its mark (the aggregate moved before the publisher heard its 202)
// counts as 0. Marks must have non-decreasing Cum; readings are in arrival
// order. missed counts marks that no reading reached.
func Lags(marks []Mark, readings []Reading) (lags []time.Duration, missed int) {
	lags = make([]time.Duration, 0, len(marks))
	var high int64 // the watermark: the highest total read so far
	j := 0
	for _, m := range marks {
		for high < m.Cum && j < len(readings) {
			high = max(high, readings[j].Total)
			j++
		}
		if high < m.Cum {
			missed++
			continue
		}
		if j == 0 { // Cum <= 0: nothing to wait for
			lags = append(lags, 0)
			continue
		}
		// readings[j-1] is the first to reach m.Cum.
		lags = append(lags, max(readings[j-1].At.Sub(m.At), 0))
	}
	return lags, missed
}
