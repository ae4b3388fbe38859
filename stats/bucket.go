package stats

import (
	"errors"
	"slices"
	"time"
)

// Grain is the size of a time bucket.
type Grain uint8

// The grains of the time:GRAIN dimensions.
const (
	Minute Grain = iota + 1
	Hour
	Day
	Week // starting on Monday, as Plausible's
	Month
)

func (g Grain) String() string {
	switch g {
	case Minute:
		return "minute"
	case Hour:
		return "hour"
	case Day:
		return "day"
	case Week:
		return "week"
	case Month:
		return "month"
	}
	return "grain?"
}

// MaxBuckets bounds the time buckets one query may span (about 11 years of
// hours), so neither the executor's rows nor meta.time_labels grow with a
// careless range.
const MaxBuckets = 100_000

// Plausible's label layouts: a date for day, week and month; a date and
// time for hour and minute.
const (
	dateLayout     = "2006-01-02"
	dateTimeLayout = "2006-01-02 15:04:05"
)

// wall is a local wall-clock time held as a UTC time.Time, so that its
// arithmetic (next hour, next month) knows nothing of offsets.
func wallOf(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// truncWall truncates a wall time to the start of its bucket (unclamped).
func (g Grain) truncWall(w time.Time) time.Time {
	y, m, d := w.Date()
	switch g {
	case Minute:
		return time.Date(y, m, d, w.Hour(), w.Minute(), 0, 0, time.UTC)
	case Hour:
		return time.Date(y, m, d, w.Hour(), 0, 0, 0, time.UTC)
	case Week:
		back := (int(w.Weekday()) + 6) % 7 // days since Monday
		return time.Date(y, m, d-back, 0, 0, 0, 0, time.UTC)
	case Month:
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// nextWall is the wall start of the bucket after the one starting at w.
func (g Grain) nextWall(w time.Time) time.Time {
	y, m, d := w.Date()
	switch g {
	case Minute:
		return w.Add(time.Minute)
	case Hour:
		return w.Add(time.Hour)
	case Week:
		return time.Date(y, m, d+7, 0, 0, 0, 0, time.UTC)
	case Month:
		return time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

func (g Grain) format(w time.Time) string {
	if g == Minute || g == Hour {
		return w.Format(dateTimeLayout)
	}
	return w.Format(dateLayout)
}

// instant is the first instant whose wall clock in loc is at or after the
// wall time w: w itself when it exists, its first occurrence when clocks
// went back over it, and the end of the gap when clocks jumped over it.
// time.Date alone leaves both cases unspecified.
func instant(w time.Time, loc *time.Location) time.Time {
	x := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc)
	best := x
	found := false
	// An offset in force within a day of x is the only one w can have.
	for _, probe := range []time.Time{x.Add(-26 * time.Hour), x, x.Add(26 * time.Hour)} {
		_, off := probe.In(loc).Zone()
		u := w.Add(-time.Duration(off) * time.Second)
		if wallOf(u, loc).Before(w) {
			continue
		}
		if !found || u.Before(best) {
			best, found = u, true
		}
	}
	return best
}

// Start is the first instant of t's bucket in loc, unclamped: for Week the
// Monday of t's local date.
func (g Grain) Start(t time.Time, loc *time.Location) time.Time {
	return instant(g.truncWall(wallOf(t, loc)), loc)
}

// Label is t's bucket label in loc, unclamped, formatted as Plausible's
// ("2026-12-07" for day, week and month; "2026-12-07 10:00:00" for hour
// and minute).
func (g Grain) Label(t time.Time, loc *time.Location) string {
	return g.format(g.truncWall(wallOf(t, loc)))
}

// bucketWall is the wall start of t's bucket within r: as Grain's, but a week
// starting before the range's first local day is clamped to that day (as
// Plausible's weekstart_not_before).
func (r Range) bucketWall(t time.Time, g Grain) time.Time {
	w := g.truncWall(wallOf(t, r.Loc))
	if g == Week && !r.From.IsZero() {
		if first := Day.truncWall(wallOf(r.From, r.Loc)); w.Before(first) {
			return first
		}
	}
	return w
}

// BucketStart is the first instant of t's bucket within r (see Label).
func (r Range) BucketStart(t time.Time, g Grain) time.Time {
	s := instant(r.bucketWall(t, g), r.Loc)
	if s.Before(r.From) {
		return r.From
	}
	return s
}

// Label is the label of t's bucket within r: Grain.Label in r's location,
// with weeks clamped to the range's first day. Rows of a time dimension are
// grouped by this label.
func (r Range) Label(t time.Time, g Grain) string {
	return g.format(r.bucketWall(t, g))
}

// ErrTooManyBuckets is a range that spans more than MaxBuckets buckets.
var ErrTooManyBuckets = errors.New("stats: range spans too many time buckets")

// Labels are the labels of every bucket holding an instant of [From, To),
// sorted, each once: meta.time_labels. A label the clocks skip (02:00 on
// the day Europe/Berlin moves to summer time) is absent, and one they
// repeat is listed once. The range must be known (From set).
func (r Range) Labels(g Grain) ([]string, error) {
	if r.From.IsZero() || !r.From.Before(r.To) {
		return nil, nil
	}
	seen := make(map[string]bool)
	var out []string
	// Within a span of one UTC offset the wall clock runs without jumps,
	// so its buckets are those from the span's first wall time to its
	// last; when clocks go back, the next span revisits labels.
	for s := r.From; s.Before(r.To); {
		e := r.To
		if _, end := s.In(r.Loc).ZoneBounds(); !end.IsZero() && end.Before(e) {
			e = end
		}
		last := wallOf(e.Add(-time.Nanosecond), r.Loc)
		for w := r.bucketWall(s, g); !w.After(last); w = nextBucket(w, g) {
			if l := g.format(w); !seen[l] {
				if len(out) == MaxBuckets {
					return nil, ErrTooManyBuckets
				}
				seen[l] = true
				out = append(out, l)
			}
		}
		s = e
	}
	slices.Sort(out) // labels sort as their wall times do
	return out, nil
}

// nextBucket is the wall start of the bucket after the one starting at w,
// which may be a week clamped to a day other than Monday.
func nextBucket(w time.Time, g Grain) time.Time {
	next := g.nextWall(w)
	if g == Week {
		return Week.truncWall(next)
	}
	return next
}

// estimateBuckets is an upper bound of the buckets of [from, to) cheap
// enough for Parse: every bucket is at least 23 hours for days, 6 days 23
// hours for weeks and 28 days minus an hour for months.
func estimateBuckets(from, to time.Time, g Grain) int64 {
	var shortest time.Duration
	switch g {
	case Minute:
		shortest = time.Minute
	case Hour:
		shortest = 30 * time.Minute // zones that shift by half an hour
	case Day:
		shortest = 23 * time.Hour
	case Week:
		shortest = 7*24*time.Hour - time.Hour
	default:
		shortest = 28*24*time.Hour - time.Hour
	}
	return int64(to.Sub(from)/shortest) + 2
}

// AutoGrain is the grain of the plain time dimension for r, Plausible's
// rule on the range's first and last second: at most 48 whole hours is
// Hour, at most 40 whole days Day, at most 52 whole weeks Week, else Month.
// So "day" and "24h" are hourly, "7d" to "30d" and "month" daily, "91d",
// "6mo", "12mo" and "year" weekly, and longer ranges monthly.
func (r Range) AutoGrain() Grain {
	span := r.To.Add(-time.Second).Sub(r.From)
	switch {
	case span < 49*time.Hour:
		return Hour
	case span < 41*24*time.Hour:
		return Day
	case span < 53*7*24*time.Hour:
		return Week
	}
	return Month
}
