package stats

import (
	"strconv"
	"time"
)

// Query is a checked Stats API query. Build it with Parse.
type Query struct {
	Site       string
	Metrics    []Metric // in the order asked: the order of each row's values
	Range      Range
	Dimensions []Dimension // in the order asked: the order of each row's labels
	Filter     Filter      // an And of the top-level filters; no child matches every row
	OrderBy    []Order     // as asked; Ordering adds Plausible's default
	Include    Include
	Limit      int // 1..MaxLimit, default MaxLimit
	Offset     int // 0..MaxOffset
	// Location is the query's time zone (timezone, default UTC), the one
	// Range counts days and buckets in.
	Location *time.Location
}

// Include is the body's include object.
type Include struct {
	TotalRows  bool `json:"total_rows"`  // meta.total_rows: the rows before pagination
	TimeLabels bool `json:"time_labels"` // meta.time_labels: every bucket of the time dimension
	// Imports asks for imported data too; Pulse imports none, so the
	// answer is the same either way and the flag is only echoed.
	Imports bool `json:"imports"`
}

// Order is one order_by entry: the metric Metrics[Index] when Metric is
// true, else the dimension Dimensions[Index].
type Order struct {
	Metric bool
	Index  int
	Desc   bool
}

// Ordering is the order rows are sorted by: OrderBy when given, else
// Plausible's default, the time dimension ascending and then the first
// metric descending.
func (q Query) Ordering() []Order {
	if len(q.OrderBy) > 0 {
		return q.OrderBy
	}
	var out []Order
	for i, d := range q.Dimensions {
		if d.IsTime() {
			out = append(out, Order{Index: i})
		}
	}
	return append(out, Order{Metric: true, Index: 0, Desc: true})
}

// TimeGrain is the grain of the query's time dimension (the plain time
// dimension resolved by Range.AutoGrain); ok is false without one. For an
// "all" range it needs the start set by WithStart.
func (q Query) TimeGrain() (g Grain, ok bool) {
	for _, d := range q.Dimensions {
		if g, ok := d.Grain(); ok {
			return g, true
		}
		if d.Kind == Time {
			return q.Range.AutoGrain(), true
		}
	}
	return 0, false
}

// WithStart sets the start of an "all" range, the start of the local day
// of first (where the site's data begins: Plausible counts whole days),
// and checks what depends on the range's length. Other ranges are
// returned unchanged.
func (q Query) WithStart(first time.Time) (Query, error) {
	if !q.Range.AllTime {
		return q, nil
	}
	q.Range.From = Day.Start(first, q.Location)
	if !q.Range.From.Before(q.Range.To) {
		return Query{}, errf("date_range", "all: the site's data begins after today")
	}
	if err := checkRangeLength(q); err != nil {
		return Query{}, err
	}
	return q, nil
}

// EventLevelOnly returns an *Error naming the first metric, dimension or
// filter that needs visits (Level VisitLevel), or nil: what an executor
// that answers from events alone refuses with 400.
func (q Query) EventLevelOnly() error {
	for i, m := range q.Metrics {
		if m.Level() == VisitLevel {
			return errf(indexPart("metrics", i), strconv.Quote(m.String())+" needs visits (sessions), which this executor does not count")
		}
	}
	for i, d := range q.Dimensions {
		if d.Level() == VisitLevel {
			return errf(indexPart("dimensions", i), strconv.Quote(d.String())+" needs visits (sessions), which this executor does not count")
		}
	}
	var bad *Error
	for i, c := range q.Filter.Children {
		c.walk(func(leaf Filter, _ bool) {
			if bad == nil && leaf.Dimension.Level() == VisitLevel {
				bad = errf(indexPart("filters", i), "filter on "+strconv.Quote(leaf.Dimension.String())+" needs visits (sessions), which this executor does not count")
			}
		})
		if bad != nil {
			return bad
		}
	}
	return nil
}

// Resolved is the query as the answer's "query" field echoes it: the body's
// shape with every default filled and date_range as the two RFC 3339
// instants of the range in the query's time zone ("all" while its start is
// unset). Parse of its JSON, at the same now, gives the same Query.
func (q Query) Resolved() ResolvedQuery {
	r := ResolvedQuery{
		SiteID: q.Site, Metrics: make([]string, len(q.Metrics)),
		Dimensions: make([]string, len(q.Dimensions)), Filters: make([]any, len(q.Filter.Children)),
		OrderBy: make([][2]string, len(q.OrderBy)), Include: q.Include,
		Pagination: Pagination{Limit: q.Limit, Offset: q.Offset}, Timezone: q.Location.String(),
	}
	for i, m := range q.Metrics {
		r.Metrics[i] = m.String()
	}
	for i, d := range q.Dimensions {
		r.Dimensions[i] = d.String()
	}
	for i, f := range q.Filter.Children {
		r.Filters[i] = f.json()
	}
	for i, o := range q.OrderBy {
		name, dir := "", "asc"
		if o.Metric {
			name = q.Metrics[o.Index].String()
		} else {
			name = q.Dimensions[o.Index].String()
		}
		if o.Desc {
			dir = "desc"
		}
		r.OrderBy[i] = [2]string{name, dir}
	}
	if q.Range.From.IsZero() {
		r.DateRange = "all"
	} else {
		r.DateRange = [2]string{rfc3339(q.Range.From, q.Location), rfc3339(q.Range.To, q.Location)}
	}
	return r
}

// rfc3339 writes t in loc, or in UTC when loc's offset then has seconds
// (local mean times such as Monrovia's -00:44:30 until 1972), which RFC
// 3339 cannot write.
func rfc3339(t time.Time, loc *time.Location) string {
	if _, off := t.In(loc).Zone(); off%60 != 0 {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return t.In(loc).Format(time.RFC3339Nano)
}

// ResolvedQuery is the JSON form of Query.Resolved.
type ResolvedQuery struct {
	SiteID     string      `json:"site_id"`
	Metrics    []string    `json:"metrics"`
	DateRange  any         `json:"date_range"` // [from, to] or "all"
	Dimensions []string    `json:"dimensions"`
	Filters    []any       `json:"filters"`
	OrderBy    [][2]string `json:"order_by"`
	Include    Include     `json:"include"`
	Pagination Pagination  `json:"pagination"`
	Timezone   string      `json:"timezone"`
}

// Pagination is the body's pagination object.
type Pagination struct {
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

func indexPart(name string, i int) string { return name + "[" + strconv.Itoa(i) + "]" }
