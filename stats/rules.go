package stats

import (
	"strconv"
	"time"
)

// checkRules keeps Plausible's rules on what may be combined, each refused
// at the part that breaks it.
func checkRules(q Query) *Error {
	goalFilter, pageFilter := q.Filter.Uses(Goal), q.Filter.Uses(Page)
	var eventDim *Dimension
	hasGoalDim := false
	for i, d := range q.Dimensions {
		hasGoalDim = hasGoalDim || d.Kind == Goal
		if d.isEvent() && d.Kind != Page && eventDim == nil {
			eventDim = &q.Dimensions[i]
		}
	}
	for i, m := range q.Metrics {
		part, name := indexPart("metrics", i), strconv.Quote(m.String())
		switch {
		case m.Kind == ConversionRate && !hasGoalDim && !goalFilter:
			return errf(part, name+" can only be queried with an event:goal filter or dimension")
		case m.Kind == Percentage && len(q.Dimensions) == 0:
			return errf(part, name+" can only be queried with dimensions")
		case m.Kind == ViewsPerVisit && pageFilter:
			return errf(part, name+" cannot be queried with a filter on event:page")
		case m.Kind == ViewsPerVisit && len(q.Dimensions) > 0:
			return errf(part, name+" cannot be queried with dimensions")
		case m.session() && eventDim != nil:
			return errf(part, "session metric "+name+" cannot be queried with the event dimension "+strconv.Quote(eventDim.String()))
		}
	}
	if q.Include.TimeLabels {
		if _, ok := q.TimeGrain(); !ok {
			return errf("include.time_labels", "requires a time dimension")
		}
	}
	return nil
}

// checkRangeLength refuses a time dimension over a range too long for its
// grain: time:minute over more than MaxMinuteSpan (Plausible's rule), and
// any grain over more than MaxBuckets buckets. It needs Range.From.
func checkRangeLength(q Query) *Error {
	for i, d := range q.Dimensions {
		if !d.IsTime() {
			continue
		}
		g, _ := q.TimeGrain()
		part := indexPart("dimensions", i)
		span := q.Range.To.Sub(q.Range.From)
		if g == Minute && span > MaxMinuteSpan {
			return errf(part, "time:minute is only supported for ranges up to "+strconv.Itoa(int(MaxMinuteSpan/time.Hour))+" hours")
		}
		if estimateBuckets(q.Range.From, q.Range.To, g) > MaxBuckets {
			return errf(part, "the range holds more than "+strconv.Itoa(MaxBuckets)+" "+g.String()+" buckets; use a coarser grain or a shorter range")
		}
	}
	return nil
}
