package redisagg

import (
	"context"
	"fmt"
	"time"

	"github.com/pulsehq/pulse/metric"
)

// EventsIn is how many events (the built-in events metric: no bots, no
// engagement events, as the fact rows) site had in the buckets of the
// longest-kept step that hold [from, to). A Stats API engine asks it
// whether a range reaching before the fact rows kept had any event there:
// none, and the rows hold the whole range. An error (wrapping ErrQuery)
// when that step's counts of from are no longer kept.
func (s *Store) EventsIn(ctx context.Context, site string, from, to time.Time) (int64, error) {
	var step metric.Step
	for _, st := range s.cat.Steps {
		if st.Retention > step.Retention {
			step = st
		}
	}
	if step.Name == "" || step.ExpireAt(step.Bucket(from.UnixMilli())) <= s.cfg.Now().UnixMilli() {
		return 0, fmt.Errorf("%w: no counts of %s kept from %s", ErrQuery, site, from.UTC().Format(time.RFC3339))
	}
	r, err := s.Series(ctx, SeriesQuery{Site: site, Metric: "events", Step: step.Name, From: from.UnixMilli(), To: to.UnixMilli() - 1})
	if err != nil {
		return 0, fmt.Errorf("count events of %s before the rows kept: %w", site, err)
	}
	var n int64
	for _, se := range r.Series {
		for _, p := range se.Points {
			n += p[1]
		}
	}
	return n, nil
}
