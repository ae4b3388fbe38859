package stats

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Row is one counted event as the Stats API reads it: an event the
// aggregates counted (deduplicated, judged by the time rule), with the
// fields the event-level metrics, dimensions and filters read.
type Row struct {
	TS       int64  // event time as counted, ms since the epoch
	Goal     string // the event type
	Page     string
	Hostname string
	Referrer string // the referrer's host
	Device   string
	Visitor  uint64    // a hash of the visitor id; 0 when the event has none
	Props    []RowProp // at most one per key
	// The visit fields ingest derived from the event's request (event.Visit).
	Source                                                 string // "" when direct
	UTMSource, UTMMedium, UTMCampaign, UTMContent, UTMTerm string
	Browser, BrowserVersion, OS, OSVersion, Country        string
	// EntryPage and ExitPage are the row's visit's, set (with Source and
	// the UTM tags, then its visit's too) only by ExecuteVisits; a stored
	// row has neither.
	EntryPage, ExitPage string
}

// RowProp is one prop of a Row: its text, and its value when it is a number.
type RowProp struct {
	Key, Value string
	Num        float64
	IsNum      bool
}

// None is the value of a prop dimension on events without that prop,
// as Plausible answers it.
const None = "(none)"

// DirectNone is the referrer and the source of an event that came with
// none, as Plausible labels direct traffic; filters match it by this label
// too.
const DirectNone = "Direct / None"

// NotSet is the label of a visit field ingest could not derive (a
// User-Agent no parser knows, an address in no country, no UTM tag), as
// Plausible labels it; filters match it by this label too.
const NotSet = "(not set)"

// MaxGroups bounds the distinct rows one query may build before
// pagination, so that a dimension of unbounded values cannot hold a query
// node's memory.
const MaxGroups = 1_000_000

// Answer is the body of a Stats API answer.
type Answer struct {
	Results []ResultRow   `json:"results"`
	Meta    Meta          `json:"meta"`
	Query   ResolvedQuery `json:"query"`
}

// ResultRow is one row: its dimension labels and metric values, in the
// order the query asked for them.
type ResultRow struct {
	Dimensions []string `json:"dimensions"`
	Metrics    []any    `json:"metrics"`
}

// Meta is the answer's meta object. Approximate names the metrics whose
// values are estimates: none, when the rows are exact.
type Meta struct {
	TotalRows   *int     `json:"total_rows,omitempty"`
	TimeLabels  []string `json:"time_labels,omitempty"`
	Approximate []string `json:"approximate"`
}

// sumScale is the fixed point sums are added in: exact for values with up
// to six decimals, as prices and durations have, where float64 addition
// of 19.99 three times is not.
const sumScale = 1e6

// group accumulates the metrics of one result row.
type group struct {
	labels    []string
	events    int64
	pageviews int64
	visitors  int     // distinct visitors: the pairs of execution.seen
	sums      []int64 // per metric: the scaled sum of Sum and Avg
	counts    []int64 // per metric: events that carried Avg's number
	// visits beginning in the range (ExecuteVisits): how many, how many
	// with one pageview, their pageviews and summed lengths
	visits, bounces, visitPageviews, visitMs int64
}

// visit is one visitor of one group, the key of execution.seen: one map
// for all groups grows far more cheaply than a set per group.
type visit struct {
	group   int32
	visitor uint64
}

// Execute answers q from rows, which yields (at least) the counted events
// of q's site and range; rows outside the range are skipped. It answers
// the event-level part of the contract and refuses the rest with the
// *Error of Query.EventLevelOnly. An "all" range needs its start set
// (Query.WithStart).
func Execute(q Query, rows func(yield func(*Row) bool)) (Answer, error) {
	return execute(q, rows, MaxGroups)
}

func execute(q Query, rows func(yield func(*Row) bool), maxGroups int) (Answer, error) {
	if err := q.EventLevelOnly(); err != nil {
		return Answer{}, err
	}
	if q.Range.AllTime && q.Range.From.IsZero() {
		return Answer{}, errf("date_range", "all: the executor has not set its start")
	}
	e := newExecution(q)
	e.batch = true
	e.maxGroups = maxGroups
	var err *Error
	rows(func(r *Row) bool {
		err = e.add(r)
		return err == nil
	})
	if err != nil {
		return Answer{}, err
	}
	return e.answer()
}

// RowsOf yields each row of rows: Execute's form of a slice.
func RowsOf(rows []Row) func(yield func(*Row) bool) {
	return func(yield func(*Row) bool) {
		for i := range rows {
			if !yield(&rows[i]) {
				return
			}
		}
	}
}

// Execution is an open run of a query that rows can be added to at any
// time and that answers as often as asked: what a live query keeps
// between the rows it is fed. Not safe for concurrent use.
type Execution struct {
	e *execution
}

// NewExecution opens an execution of q, with the checks of Execute.
func NewExecution(q Query) (*Execution, error) {
	if err := q.EventLevelOnly(); err != nil {
		return nil, err
	}
	if q.Range.AllTime && q.Range.From.IsZero() {
		return nil, errf("date_range", "all: the executor has not set its start")
	}
	e := newExecution(q)
	e.maxGroups = MaxGroups
	return &Execution{e: e}, nil
}

// Add counts r; rows outside the range are skipped. It fails, with an
// *Error, when r would make more than MaxGroups rows; the execution is
// then of no further use.
func (x *Execution) Add(r *Row) error {
	if err := x.e.add(r); err != nil {
		return err
	}
	return nil
}

// Answer is the answer to the rows added so far. It leaves the
// execution as it was, so it may be called again after more rows.
func (x *Execution) Answer() (Answer, error) { return x.e.answer() }

// execution is one run of Execute.
type execution struct {
	q        Query
	from, to int64
	grain    Grain
	hasTime  bool
	index    map[string]int32 // labels joined by NUL -> groups
	groups   []*group
	seen     map[visit]struct{}
	visitors bool // a metric needs the groups' visitors: count them
	// batch is an Execute, answered once. Its visitors are counted in
	// seen while it fits in the cache; past maxSeen pairs they are
	// collected in pairs instead and counted by sorting them at the end,
	// which reads and writes memory in order, where a big set probes it
	// at random. An open Execution keeps seen, which answers at any time.
	batch     bool
	pairs     []visit
	recent    *[1 << recentBits]visit        // the pair last collected in each slot
	total     map[uint64]struct{}            // visitors of every filtered row, for percentage
	totalN    int                            // their count, when counted elsewhere (total nil)
	convBase  map[string]map[uint64]struct{} // visitors without goal filters, by the non-goal labels
	baseF     Filter
	key       []byte
	labels    []string
	maxGroups int
	row       *Row                   // the row add looks at, for get
	get       func(Dimension) string // the row's values, for Match: made once, not per row
	labelAt   map[int64]string       // time labels by minute
}

func newExecution(q Query) *execution {
	e := &execution{q: q, from: q.Range.From.UnixMilli(), to: q.Range.To.UnixMilli(),
		index: map[string]int32{}, seen: map[visit]struct{}{}, labels: make([]string, len(q.Dimensions)),
		labelAt: map[int64]string{}, maxGroups: MaxGroups}
	e.get = func(d Dimension) string { return value(e.row, d) }
	e.grain, e.hasTime = q.TimeGrain()
	for _, m := range q.Metrics {
		e.visitors = e.visitors || m.Kind == Visitors || m.Kind == Percentage || m.Kind == ConversionRate
		switch m.Kind {
		case Percentage:
			e.total = map[uint64]struct{}{}
		case ConversionRate:
			e.convBase = map[string]map[uint64]struct{}{}
			e.baseF = withoutGoals(q.Filter)
		}
	}
	return e
}

// withoutGoals is f without its event:goal leaves: the population a
// conversion rate divides by. Plausible allows goal filters only at the
// top level, so the leaves to drop are children of the root.
func withoutGoals(f Filter) Filter {
	out := f
	out.Children = nil
	for _, c := range f.Children {
		if c.Op.IsLeaf() && c.Dimension.Kind == Goal {
			continue
		}
		out.Children = append(out.Children, c)
	}
	return out
}

// value is r's value of the non-time dimension d.
func value(r *Row, d Dimension) string {
	switch d.Kind {
	case Page:
		return r.Page
	case Hostname:
		return r.Hostname
	case Goal:
		return r.Goal
	case Referrer:
		return label(Referrer, r.Referrer)
	case Device:
		return r.Device
	case Browser:
		return label(Browser, r.Browser)
	case BrowserVersion:
		return label(BrowserVersion, r.BrowserVersion)
	case OS:
		return label(OS, r.OS)
	case OSVersion:
		return label(OSVersion, r.OSVersion)
	case Country:
		return label(Country, r.Country)
	case Source:
		return label(Source, r.Source)
	case UTMSource:
		return label(UTMSource, r.UTMSource)
	case UTMMedium:
		return label(UTMMedium, r.UTMMedium)
	case UTMCampaign:
		return label(UTMCampaign, r.UTMCampaign)
	case UTMContent:
		return label(UTMContent, r.UTMContent)
	case UTMTerm:
		return label(UTMTerm, r.UTMTerm)
	case EntryPage:
		return r.EntryPage
	case ExitPage:
		return r.ExitPage
	case Prop:
		for _, p := range r.Props {
			if p.Key == d.Prop {
				return p.Value
			}
		}
		return None
	}
	return ""
}

func (e *execution) add(r *Row) *Error {
	if r.TS < e.from || r.TS >= e.to {
		return nil
	}
	e.row = r
	if e.convBase != nil && Match(e.baseF, e.get) {
		e.addBase(r)
	}
	if !Match(e.q.Filter, e.get) {
		return nil
	}
	if e.total != nil && r.Visitor != 0 {
		e.total[r.Visitor] = struct{}{}
	}
	for i, d := range e.q.Dimensions {
		if d.IsTime() {
			e.labels[i] = e.timeLabel(r.TS)
		} else {
			e.labels[i] = value(r, d)
		}
	}
	gi, err := e.groupOf()
	if err != nil {
		return err
	}
	e.count(gi, r)
	return nil
}

// groupOf is the group of e.labels, made when it is new.
func (e *execution) groupOf() (int32, *Error) {
	e.key = e.key[:0]
	for _, l := range e.labels {
		e.key = append(append(e.key, l...), 0)
	}
	gi, ok := e.index[string(e.key)]
	if !ok {
		if len(e.groups) >= e.maxGroups {
			return 0, errf("dimensions", "more than "+strconv.Itoa(e.maxGroups)+" rows: add a filter or a coarser time dimension")
		}
		gi = int32(len(e.groups))
		e.groups = append(e.groups, &group{labels: slices.Clone(e.labels), sums: make([]int64, len(e.q.Metrics)), counts: make([]int64, len(e.q.Metrics))})
		e.index[string(e.key)] = gi
	}
	return gi, nil
}

// timeLabel is the label of the time bucket of ts. Buckets are whole
// minutes in every zone of today's tz database, so labels are kept per
// minute: formatting a time per row would cost more than the rest of a
// row's work.
func (e *execution) timeLabel(ts int64) string {
	m := ts / 60_000
	if l, ok := e.labelAt[m]; ok {
		return l
	}
	l := e.q.Range.Label(time.UnixMilli(m*60_000), e.grain)
	e.labelAt[m] = l
	return l
}

// addBase counts r's visitor in the conversion-rate denominator of its
// labels other than the goal.
func (e *execution) addBase(r *Row) {
	if r.Visitor == 0 {
		return
	}
	e.key = e.key[:0]
	for _, d := range e.q.Dimensions {
		if d.Kind == Goal {
			continue
		}
		if d.IsTime() {
			e.key = append(e.key, e.timeLabel(r.TS)...)
		} else {
			e.key = append(e.key, value(r, d)...)
		}
		e.key = append(e.key, 0)
	}
	set := e.convBase[string(e.key)]
	if set == nil {
		set = map[uint64]struct{}{}
		e.convBase[string(e.key)] = set
	}
	set[r.Visitor] = struct{}{}
}

// count adds r to the group gi.
func (e *execution) count(gi int32, r *Row) {
	g := e.groups[gi]
	g.events++
	if r.Goal == "pageview" {
		g.pageviews++
	}
	if e.visitors && r.Visitor != 0 {
		v := visit{gi, r.Visitor}
		if e.pairs != nil {
			// A pair collected lately (visitors come back) is not
			// collected again: the sort then has fewer.
			slot := &e.recent[(r.Visitor^uint64(gi)*0x9e3779b97f4a7c15)>>(64-recentBits)]
			if *slot != v {
				*slot = v
				e.pairs = append(e.pairs, v)
			}
		} else if _, ok := e.seen[v]; !ok {
			e.seen[v] = struct{}{}
			g.visitors++
			if e.batch && len(e.seen) > maxSeen {
				e.toPairs()
			}
		}
	}
	for i, m := range e.q.Metrics {
		if m.Kind != Sum && m.Kind != Avg {
			continue
		}
		for _, p := range r.Props {
			if p.Key == m.Prop && p.IsNum {
				g.sums[i] += int64(math.Round(p.Num * sumScale))
				g.counts[i]++
			}
		}
	}
}

// answer builds the rows, sorts and pages them.
func (e *execution) answer() (Answer, error) {
	if e.batch {
		e.countPairs()
	}
	q := e.q
	rows := make([]ResultRow, 0, len(e.groups))
	for _, g := range e.groups {
		vals := make([]any, len(q.Metrics))
		for i, m := range q.Metrics {
			vals[i] = e.metric(g, i, m)
		}
		rows = append(rows, ResultRow{Dimensions: g.labels, Metrics: vals})
	}
	sortRows(rows, q.Ordering())
	a := Answer{Meta: Meta{Approximate: []string{}}, Query: q.Resolved()}
	if q.Include.TotalRows {
		n := len(rows)
		a.Meta.TotalRows = &n
	}
	if q.Include.TimeLabels && e.hasTime {
		labels, err := q.Range.Labels(e.grain)
		if err != nil {
			return Answer{}, errf("include.time_labels", err.Error())
		}
		a.Meta.TimeLabels = labels
	}
	lo := min(q.Offset, len(rows))
	hi := min(lo+q.Limit, len(rows))
	a.Results = rows[lo:hi]
	return a, nil
}

// metric is the value of metric m (the i-th asked) in g.
func (e *execution) metric(g *group, i int, m Metric) any {
	switch m.Kind {
	case Events:
		return g.events
	case Pageviews:
		return g.pageviews
	case Visitors:
		return g.visitors
	case Sum:
		return float64(g.sums[i]) / sumScale
	case Avg:
		if g.counts[i] == 0 {
			return nil
		}
		return round2(float64(g.sums[i]) / sumScale / float64(g.counts[i]))
	case Percentage:
		if e.total == nil {
			return percent(g.visitors, e.totalN)
		}
		return percent(g.visitors, len(e.total))
	case ConversionRate:
		e.key = e.key[:0]
		for j, d := range e.q.Dimensions {
			if d.Kind != Goal {
				e.key = append(append(e.key, g.labels[j]...), 0)
			}
		}
		return percent(g.visitors, len(e.convBase[string(e.key)]))
	case Visits, BounceRate, VisitDuration, ViewsPerVisit:
		return visitMetric(g, m)
	}
	return nil
}

// percent is 100·n/of rounded to two decimals, 0 when of is 0.
func percent(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return round2(100 * float64(n) / float64(of))
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// sortRows sorts rows by the orders, then by their labels, so that equal
// rows come in the same order every time.
func sortRows(rows []ResultRow, orders []Order) {
	slices.SortFunc(rows, func(a, b ResultRow) int {
		for _, o := range orders {
			var c int
			if o.Metric {
				c = cmpValue(a.Metrics[o.Index], b.Metrics[o.Index])
			} else {
				c = strings.Compare(a.Dimensions[o.Index], b.Dimensions[o.Index])
			}
			if o.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return slices.Compare(a.Dimensions, b.Dimensions)
	})
}

// cmpValue orders metric values: numbers by value, a missing value (an
// average of nothing) first.
func cmpValue(a, b any) int {
	fa, oka := number(a)
	fb, okb := number(b)
	if !oka || !okb {
		return cmp.Compare(btoi(oka), btoi(okb))
	}
	return cmp.Compare(fa, fb)
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// recentBits sizes execution.recent: 4,096 slots, 64 KiB, within the cache.
const recentBits = 12

// maxSeen is the most pairs an Execute counts in its set (about 300 KB)
// before it collects them to sort.
const maxSeen = 1 << 13

// toPairs moves the pairs of seen to pairs; from now on count collects.
func (e *execution) toPairs() {
	e.pairs = make([]visit, 0, 4*len(e.seen))
	for v := range e.seen {
		e.pairs = append(e.pairs, v)
	}
	e.seen = nil
	e.recent = new([1 << recentBits]visit)
}

// countPairs sets each group's visitors from e.pairs, when count collected
// them: sorted by group and visitor, the distinct pairs are the runs.
func (e *execution) countPairs() {
	if e.pairs == nil {
		return
	}
	for _, g := range e.groups {
		g.visitors = 0
	}
	p := radixSortVisits(e.pairs)
	for i := range p {
		if i == 0 || p[i] != p[i-1] {
			e.groups[p[i].group].visitors++
		}
	}
	e.pairs = nil
}

// radixSortVisits sorts p by (group, visitor) and returns the sorted slice
// (p or its scratch twin): least significant byte first, the counts of
// every byte taken in one pass, and bytes equal in every pair skipped.
// Small counting tables keep each pass within the cache.
func radixSortVisits(p []visit) []visit {
	if len(p) < 2 {
		return p
	}
	// 12 digits: the 8 bytes of the visitor, then the 4 of the group.
	digit := func(v visit, d int) uint8 {
		if d < 8 {
			return uint8(v.visitor >> (8 * d))
		}
		return uint8(uint32(v.group) >> (8 * (d - 8)))
	}
	var counts [12][256]int
	for _, v := range p {
		for d := range 12 {
			counts[d][digit(v, d)]++
		}
	}
	tmp := make([]visit, len(p))
	for d := range 12 {
		c := &counts[d]
		if c[digit(p[0], d)] == len(p) {
			continue // every pair has this byte
		}
		sum := 0
		for i, n := range c {
			c[i] = sum
			sum += n
		}
		for _, v := range p {
			k := digit(v, d)
			tmp[c[k]] = v
			c[k]++
		}
		p, tmp = tmp, p
	}
	return p
}
