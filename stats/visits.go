package stats

import (
	"cmp"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// VisitGap is the quiet time that ends a visit: an event of a visitor
// this long or longer after their previous one begins a new visit.
const VisitGap = 30 * time.Minute

// MaxVisitLookback is how far before a range ExecuteVisits reads back to
// find where the visits of the range's first events began: a visit that
// had already run longer when the range began is taken as beginning 24
// hours before it.
const MaxVisitLookback = 24 * time.Hour

const visitGapMs = int64(VisitGap / time.Millisecond)

// HourViews returns the views of a site's hours (their starts, ms,
// ascending), in the same order; an hour without rows is an empty view.
type HourViews func(hours []int64) ([]SegmentView, error)

// NeedsVisits reports whether q asks for a metric, a dimension or a
// filter of VisitLevel: ExecuteVisits answers it, ExecuteSegments does not.
func (q Query) NeedsVisits() bool { return q.EventLevelOnly() != nil }

// checkVisits refuses what visits cannot answer as asked: a visit metric
// broken down by event:page, since one visit holds events of many pages
// (checkRules refuses the other event dimensions, as Plausible does).
func (q Query) checkVisits() error {
	m := slices.IndexFunc(q.Metrics, func(m Metric) bool { return m.Level() == VisitLevel })
	if m < 0 {
		return nil
	}
	for i, d := range q.Dimensions {
		if d.Kind == Page {
			return errf(indexPart("dimensions", i), strconv.Quote(q.Metrics[m].String())+
				" is a metric of visits, which hold events of many values of "+strconv.Quote(d.String())+
				": break visits down by visit:entry_page or visit:exit_page, or ask event metrics")
		}
	}
	return nil
}

// visitAttrs reports whether q reads a value only a visit has (its
// source, UTM tags, entry or exit page) in a dimension or a filter.
func (q Query) visitAttrs() bool {
	for _, d := range q.Dimensions {
		if d.Level() == VisitLevel {
			return true
		}
	}
	found := false
	q.Filter.walk(func(leaf Filter, _ bool) {
		found = found || leaf.Dimension.Level() == VisitLevel
	})
	return found
}

// ExecuteVisits answers q like ExecuteSegments, and also what needs visits
// (docs/queries.md "Visits"): the visit metrics, and the visit:*
// dimensions and filters a visit takes from its events. It reads the
// hours of the range up to now and the half hour before it (where the
// range's first visits may have begun), and, when q reads a visit's
// source, UTM tags or entry page, further back as long as a visit of the
// range's first events is still open, at most MaxVisitLookback.
//
// A visit belongs to the range and the time bucket of its first event,
// and is read up to the range's end, so the answer for a closed range
// does not change later.
func ExecuteVisits(q Query, now time.Time, hours HourViews) (Answer, error) {
	if q.Range.AllTime && q.Range.From.IsZero() {
		return Answer{}, errf("date_range", "all: the executor has not set its start")
	}
	if err := q.checkVisits(); err != nil {
		return Answer{}, err
	}
	from, to := q.Range.From.UnixMilli(), q.Range.To.UnixMilli()
	end := min(to, now.UnixMilli()+1)
	var list []int64
	for h := hourStart(from - visitGapMs); h < end; h += hourMs {
		list = append(list, h)
	}
	views, err := hours(list)
	if err != nil {
		return Answer{}, err
	}
	s := newSessions(views)
	s.build(end)
	attrs := q.visitAttrs()
	if attrs && len(views) > 0 {
		if err := s.lookBack(from, hours); err != nil {
			return Answer{}, err
		}
	}
	e, err := s.countEvents(q, from, attrs)
	if err != nil {
		return Answer{}, err
	}
	if err := e.addVisits(s, from, to); err != nil {
		return Answer{}, err
	}
	return e.answer()
}

// hourStart is the start of the hour holding ts (ms; floor).
func hourStart(ts int64) int64 {
	h := ts / hourMs * hourMs
	if h > ts {
		h -= hourMs
	}
	return h
}

// sessions are the visits of a window of hours: each row's visit, and
// what each visit is made of.
type sessions struct {
	views    []SegmentView // the window's hours, ascending; hours read back are appended
	window   int           // how many of views are the window's
	visits   visitSet
	rowVisit [][]int32 // by window view, by row: the row's visit; -1 past the end
	matched  []bool    // by visit: an event matched the filter; nil: every visit
}

// visitList is the visits of one of build's workers, in blocks that are
// never copied: an hour of a big site makes a million visits, and growing
// one slice moved them many times over.
type visitList struct {
	blocks [][]visitInfo
	n      int
}

const visitBlock = 1 << 16

func (l *visitList) at(i int32) *visitInfo {
	return &l.blocks[i/visitBlock][i%visitBlock]
}

// add appends v and returns its index.
func (l *visitList) add(v visitInfo) int32 {
	if l.n%visitBlock == 0 {
		l.blocks = append(l.blocks, make([]visitInfo, 0, visitBlock))
	}
	b := &l.blocks[len(l.blocks)-1]
	*b = append(*b, v)
	l.n++
	return int32(l.n - 1)
}

// visitSet is the visits of every worker: visit id i is index i/n of
// worker i%n's list, so ids are made without the workers talking.
type visitSet struct {
	lists []visitList
}

// split makes n empty lists and returns n.
func (s *visitSet) split(n int) int {
	s.lists = make([]visitList, max(n, 1))
	return len(s.lists)
}

// len is one past the highest id; ids below it whose list is shorter
// name no visit (has).
func (s *visitSet) len() int {
	m := 0
	for i := range s.lists {
		m = max(m, s.lists[i].n)
	}
	return m * len(s.lists)
}

func (s *visitSet) has(id int32) bool {
	n := int32(len(s.lists))
	return id/n < int32(s.lists[id%n].n)
}

func (s *visitSet) at(id int32) *visitInfo {
	n := int32(len(s.lists))
	return s.lists[id%n].at(id / n)
}

// rowRef is one row of sessions.views.
type rowRef struct{ view, row int32 }

// visitInfo is one visit: its span, the rows its values come from, and
// its counts.
type visitInfo struct {
	start, end      int64
	first           rowRef // source, UTM tags, device, browser, os, country
	entry, exit     rowRef // the first and last pageview, or event while it has none
	entryPV, exitPV bool   // entry, exit are pageviews
	pageviews       int32
}

// add appends a later event to v.
func (v *visitInfo) add(ref rowRef, ts int64, pageview bool) {
	v.end = ts
	switch {
	case pageview:
		v.pageviews++
		if !v.entryPV {
			v.entry, v.entryPV = ref, true
		}
		v.exit, v.exitPV = ref, true
	case !v.exitPV:
		v.exit = ref
	}
}

// prepend adds an earlier event to v, found reading back.
func (v *visitInfo) prepend(ref rowRef, ts int64, pageview bool) {
	v.start, v.first = ts, ref
	switch {
	case pageview:
		v.pageviews++
		v.entry, v.entryPV = ref, true
		if !v.exitPV {
			v.exit, v.exitPV = ref, true
		}
	case !v.entryPV:
		v.entry = ref
	}
}

func newSessions(views []SegmentView) *sessions {
	return &sessions{views: views, window: len(views)}
}

// build finds the visits of the window's rows before end: each visitor's
// events in time order, a new visit after each gap of VisitGap or more.
// Visitors are split between workers by their number (rows without a
// visitor by their row), each finding the visits of its own visitors in
// one pass over the rows: the pass is mostly waiting on memory (a
// visitor's latest visit), which two cores wait on side by side.
func (s *sessions) build(end int64) {
	orders := make([][]int32, len(s.views))
	s.rowVisit = make([][]int32, len(s.views))
	for vi := range s.views {
		orders[vi] = visitOrder(&s.views[vi], end)
		rv := make([]int32, s.views[vi].n)
		for i := range rv {
			rv[i] = -1
		}
		s.rowVisit[vi] = rv
	}
	workers := s.visits.split(min(runtime.GOMAXPROCS(0), maxVisitWorkers))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { s.buildPart(orders, w, workers) })
	}
	wg.Wait()
}

// maxVisitWorkers bounds build's goroutines.
const maxVisitWorkers = 4

// buildPart is build's pass for worker w of n.
func (s *sessions) buildPart(orders [][]int32, w, n int) {
	last := newLastVisits(s.views)
	list := &s.visits.lists[w]
	for vi := range s.views {
		v := &s.views[vi]
		rv := s.rowVisit[vi]
		pv := pageviewID(v)
		for _, r := range orders[vi] {
			key := last.key(v, r)
			if key == 0 {
				key = uint64(r) // a visit of its own
			}
			if key%uint64(n) != uint64(w) {
				continue
			}
			slot := last.slot(v, r)
			ts := v.hour + int64(v.ts[r])
			ref := rowRef{int32(vi), r}
			var local int32
			if slot != nil && slot.id > 0 && ts-slot.end < visitGapMs {
				local = slot.id - 1
			} else {
				local = list.add(visitInfo{start: ts, first: ref, entry: ref, exit: ref})
				if slot != nil {
					slot.id = local + 1
				}
			}
			if slot != nil {
				slot.end = ts
			}
			list.at(local).add(ref, ts, v.text[fieldGoal].ids.at(int(r)) == pv)
			rv[r] = local*int32(n) + int32(w)
		}
	}
}

// pageviewID is the dictionary id of "pageview" in v's goals, or an id no
// row has.
func pageviewID(v *SegmentView) uint32 {
	if i := slices.Index(v.text[fieldGoal].values, "pageview"); i >= 0 {
		return uint32(i)
	}
	return math.MaxUint32
}

// visitOrder is the rows of v before end in the order a visitor's events
// are taken: by time, and rows of the same millisecond by their values,
// so that they come in the same order whatever order they were applied
// in (a replay applies them in another). Rows are sorted as integers
// (time, then row), which costs a fraction of sorting by a comparison;
// an hour wholly before end keeps its order in its segment for the next
// query (Segment.order), which reads it as long as no row was appended.
func visitOrder(v *SegmentView, end int64) []int32 {
	whole := v.hour+hourMs <= end
	if whole && v.order != nil {
		if rows := v.order.get(v.n); rows != nil {
			return rows
		}
	}
	keys := make([]uint64, 0, v.n)
	for i := range v.n {
		if v.hour+int64(v.ts[i]) < end {
			keys = append(keys, uint64(v.ts[i])<<32|uint64(i))
		}
	}
	if !slices.IsSorted(keys) {
		slices.Sort(keys)
	}
	out := make([]int32, len(keys))
	for i, k := range keys {
		out[i] = int32(uint32(k))
	}
	byValues := func(a, b int32) int {
		for f := range v.text {
			if c := strings.Compare(v.text[f].value(int(a)), v.text[f].value(int(b))); c != 0 {
				return c
			}
		}
		return cmp.Compare(a, b) // rows alike in every value are alike to a visit
	}
	for lo := 0; lo < len(keys); {
		hi := lo + 1
		for hi < len(keys) && keys[hi]>>32 == keys[lo]>>32 {
			hi++
		}
		if hi-lo > 1 {
			slices.SortFunc(out[lo:hi], byValues)
		}
		lo = hi
	}
	if whole && v.order != nil {
		v.order.put(v.n, out)
	}
	return out
}

// rowOrder is a segment's rows in visitOrder, for its first n rows: read
// by every query while the segment does not grow. Segment.Append counts
// its 4 bytes a row in Bytes.
type rowOrder struct {
	mu   sync.Mutex
	n    int
	rows []int32
}

func (o *rowOrder) get(n int) []int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == n && o.rows != nil {
		return o.rows
	}
	return nil
}

func (o *rowOrder) put(n int, rows []int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if n >= o.n {
		o.n, o.rows = n, rows
	}
}

// lastVisits is each visitor's latest visit, by visitor number when the
// views share one numbering, else by a number of its own per visitor
// hash. Numbers are kept in pages made on first use: a day's visitors
// hold a few runs of a numbering that spans every hour cached, and a
// table of all of it (48 MB for 3,000,000 visitors) was most of what a
// 24-hour query allocated.
type lastVisits struct {
	pages [][]lastVisit     // by number >> lastPageBits
	local map[uint64]uint32 // hash -> own number; nil: by visitor number
}

const lastPageBits = 12

// lastVisit is a visitor's latest visit (its index+1 in a worker's list;
// 0: none yet) and the time of its last event, kept here so that a
// visitor's next event is judged without reading the visit.
type lastVisit struct {
	end int64
	id  int32
}

func newLastVisits(views []SegmentView) *lastVisits {
	l := &lastVisits{}
	if !oneNumbering(views) {
		l.local = map[uint64]uint32{}
	}
	return l
}

// key is row r's visitor as the views tell visitors apart: its number,
// or its hash across numberings; 0 for a row without a visitor.
func (l *lastVisits) key(v *SegmentView, r int32) uint64 {
	n := v.visitor[r]
	if l.local != nil && n != 0 {
		return v.hashes[n]
	}
	return uint64(n)
}

// slot is the latest visit of row r's visitor, nil for a row without one.
func (l *lastVisits) slot(v *SegmentView, r int32) *lastVisit {
	n := v.visitor[r]
	if n == 0 {
		return nil
	}
	if l.local != nil {
		own, ok := l.local[v.hashes[n]]
		if !ok {
			own = uint32(len(l.local) + 1)
			l.local[v.hashes[n]] = own
		}
		n = own
	}
	p := int(n >> lastPageBits)
	if p >= len(l.pages) {
		l.pages = append(l.pages, make([][]lastVisit, p+1-len(l.pages))...)
	}
	if l.pages[p] == nil {
		l.pages[p] = make([]lastVisit, 1<<lastPageBits)
	}
	return &l.pages[p][n&(1<<lastPageBits-1)]
}

// lookBack reads the hours before the window, latest first, for the
// earlier events of the visits still open at the window's start that
// reach the range (from): where they began, their first event and entry
// page. It stops when none is open, or MaxVisitLookback before from.
func (s *sessions) lookBack(from int64, hours HourViews) error {
	start := s.views[0].hour
	open := map[uint64]int32{} // visitor hash -> its visit open at start
	for id := range int32(s.visits.len()) {
		if !s.visits.has(id) {
			continue
		}
		v := s.visits.at(id)
		if v.start-start >= visitGapMs || v.end < from {
			continue
		}
		fv := &s.views[v.first.view]
		if h := fv.hashes[fv.visitor[v.first.row]]; h != 0 {
			open[h] = id
		}
	}
	limit := hourStart(from - int64(MaxVisitLookback/time.Millisecond))
	for h := start - hourMs; len(open) > 0 && h >= limit; h -= hourMs {
		got, err := hours([]int64{h})
		if err != nil {
			return err
		}
		s.views = append(s.views, got[0])
		vi := int32(len(s.views) - 1)
		v := &s.views[vi]
		pv := pageviewID(v)
		order := visitOrder(v, math.MaxInt64)
		for k := len(order) - 1; k >= 0; k-- {
			r := order[k]
			hash := v.hashes[v.visitor[r]]
			id, ok := open[hash]
			if !ok {
				continue
			}
			ts := v.hour + int64(v.ts[r])
			if s.visits.at(id).start-ts >= visitGapMs {
				delete(open, hash) // a visit of its own ended here
				continue
			}
			s.visits.at(id).prepend(rowRef{vi, r}, ts, v.text[fieldGoal].ids.at(int(r)) == pv)
		}
		for hash, id := range open {
			if s.visits.at(id).start-h >= visitGapMs {
				delete(open, hash) // no earlier hour holds an event within the gap
			}
		}
	}
	return nil
}

// text is the value of field f of row ref.
func (s *sessions) text(ref rowRef, f int) string {
	return s.views[ref.view].text[f].value(int(ref.row))
}

// value is visit id's label of the non-time dimension k: its source, UTM
// tags and other request fields from its first event, its entry and exit
// page from its first and last pageview.
func (s *sessions) value(id int32, k DimensionKind) string {
	v := s.visits.at(id)
	switch k {
	case EntryPage:
		return s.text(v.entry, fieldPage)
	case ExitPage:
		return s.text(v.exit, fieldPage)
	case Source:
		return label(k, s.text(v.first, fieldSource))
	case UTMSource, UTMMedium, UTMCampaign, UTMContent, UTMTerm:
		return label(k, s.text(v.first, fieldUTMSource+int(k-UTMSource)))
	}
	if f := textField(k); f >= 0 {
		return label(k, s.text(v.first, f))
	}
	return ""
}

// countEvents counts the event metrics of q over the range's rows (from
// on) in columns, and marks the visits with an event the filter matches.
// When q reads a visit's values (attrs), the views scanned are the
// window's with those columns replaced by each row's visit's.
func (s *sessions) countEvents(q Query, from int64, attrs bool) (*execution, error) {
	var views []SegmentView
	var scanned []int // the window view of each of views
	for vi := range s.window {
		if v := &s.views[vi]; v.n > 0 && v.hour+hourMs > from {
			if attrs {
				views = append(views, s.visitView(vi, q))
			} else {
				views = append(views, *v)
			}
			scanned = append(scanned, vi)
		}
	}
	if q.Filter.Op != 0 {
		s.matched = make([]bool, s.visits.len())
		for i := range views {
			bits := evalFilter(q.Filter, &views[i])
			for r, id := range s.rowVisit[scanned[i]] {
				if id >= 0 && bits[r>>6]&(1<<(r&63)) != 0 {
					s.matched[id] = true
				}
			}
		}
	}
	if !slices.ContainsFunc(q.Metrics, func(m Metric) bool { return m.Level() == EventLevel }) {
		return newExecution(q), nil
	}
	return countSegments(q, views, runtime.GOMAXPROCS(0), minPartRows)
}

// visitFields are the text fields a row takes from its visit: the field
// and the visit's row it is read from (and that row's field).
var visitFields = []struct {
	field, from int
	row         func(v *visitInfo) rowRef
}{
	{fieldSource, fieldSource, firstRow}, {fieldUTMSource, fieldUTMSource, firstRow},
	{fieldUTMMedium, fieldUTMMedium, firstRow}, {fieldUTMCampaign, fieldUTMCampaign, firstRow},
	{fieldUTMContent, fieldUTMContent, firstRow}, {fieldUTMTerm, fieldUTMTerm, firstRow},
	{fieldEntryPage, fieldPage, func(v *visitInfo) rowRef { return v.entry }},
	{fieldExitPage, fieldPage, func(v *visitInfo) rowRef { return v.exit }},
}

func firstRow(v *visitInfo) rowRef { return v.first }

// visitView is window view vi with the columns q reads of the fields a
// row takes from its visit made each row's visit's. A value is
// translated once per dictionary id of the hour it comes from, not once
// per row.
func (s *sessions) visitView(vi int, q Query) SegmentView {
	v := s.views[vi]
	for _, vf := range visitFields {
		if !q.reads(textKinds[vf.field]) {
			continue
		}
		var dict dictionary
		dict.id("")                             // id 0: rows past the range's end, which no scan selects
		trans := make([][]uint32, len(s.views)) // by view, by its id: our id+1
		var ids idColumn
		for _, id := range s.rowVisit[vi] {
			if id < 0 {
				ids.append(0)
				continue
			}
			ref := vf.row(s.visits.at(id))
			src := &s.views[ref.view].text[vf.from]
			t := trans[ref.view]
			if t == nil {
				t = make([]uint32, len(src.values))
				trans[ref.view] = t
			}
			sid := src.ids.at(int(ref.row))
			if t[sid] == 0 {
				nid, _ := dict.id(src.values[sid])
				t[sid] = nid + 1
			}
			ids.append(t[sid] - 1)
		}
		v.text[vf.field] = viewColumn{ids: ids, values: dict.values}
	}
	return v
}

// reads reports whether q has a dimension or a filter leaf of kind k.
func (q Query) reads(k DimensionKind) bool {
	if slices.ContainsFunc(q.Dimensions, func(d Dimension) bool { return d.Kind == k }) {
		return true
	}
	found := false
	q.Filter.walk(func(leaf Filter, _ bool) { found = found || leaf.Dimension.Kind == k })
	return found
}

// addVisits counts in e the visits that begin in [from, to) and that an
// event matched the filter, each in the group of its labels.
func (e *execution) addVisits(s *sessions, from, to int64) error {
	if !slices.ContainsFunc(e.q.Metrics, func(m Metric) bool { return m.Level() == VisitLevel }) {
		return nil
	}
	if len(e.index) < len(e.groups) {
		for gi, g := range e.groups {
			e.index[joinLabels(g.labels)] = int32(gi)
		}
	}
	var g *group
	prev := make([]string, len(e.labels))
	for id := range int32(s.visits.len()) {
		if !s.visits.has(id) {
			continue
		}
		v := s.visits.at(id)
		if v.start < from || v.start >= to || s.matched != nil && !s.matched[id] {
			continue
		}
		for i, d := range e.q.Dimensions {
			if d.IsTime() {
				e.labels[i] = e.timeLabel(v.start)
			} else {
				e.labels[i] = s.value(id, d.Kind)
			}
		}
		if g == nil || !slices.Equal(prev, e.labels) {
			gi, err := e.groupOf()
			if err != nil {
				return err
			}
			g = e.groups[gi]
			copy(prev, e.labels)
		}
		g.visits++
		if v.pageviews == 1 {
			g.bounces++
		}
		g.visitPageviews += int64(v.pageviews)
		g.visitMs += v.end - v.start
	}
	return nil
}

// joinLabels is the key of labels in execution.index.
func joinLabels(labels []string) string {
	var b strings.Builder
	for _, l := range labels {
		b.WriteString(l)
		b.WriteByte(0)
	}
	return b.String()
}

// visitMetric is the value of the visit metric m in g, rounded as
// Plausible rounds it; 0 for a group without visits.
func visitMetric(g *group, m Metric) any {
	if m.Kind == Visits {
		return g.visits
	}
	if g.visits == 0 {
		if m.Kind == ViewsPerVisit {
			return 0.0
		}
		return int64(0)
	}
	n := float64(g.visits)
	switch m.Kind {
	case BounceRate:
		return int64(math.Round(100 * float64(g.bounces) / n))
	case VisitDuration:
		return int64(math.Round(float64(g.visitMs) / 1000 / n))
	case ViewsPerVisit:
		return round2(float64(g.visitPageviews) / n)
	}
	return nil
}
