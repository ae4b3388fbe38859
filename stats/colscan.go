package stats

import (
	"math"
	"math/bits"
	"runtime"
	"slices"
	"strconv"
	"sync"
)

// ExecuteSegments answers q from views, like Execute from their rows, but
// column by column: a filter is evaluated once per dictionary value and
// then as bitmaps, a breakdown groups rows by their dictionary ids, and
// visitors are united by number. Queries it does not scan in columns
// (conversion_rate, or views numbered by different VisitorNumbers) are answered
// by Execute over the rebuilt rows, with the same result.
func ExecuteSegments(q Query, views []SegmentView) (Answer, error) {
	if err := q.EventLevelOnly(); err != nil {
		return Answer{}, err
	}
	if q.Range.AllTime && q.Range.From.IsZero() {
		return Answer{}, errf("date_range", "all: the executor has not set its start")
	}
	e, err := countSegments(q, views, runtime.GOMAXPROCS(0), minPartRows)
	if err != nil {
		return Answer{}, err
	}
	return e.answer()
}

// executeSegments scans views in columns, in up to workers goroutines of
// at least minRows rows each.
func executeSegments(q Query, views []SegmentView, workers, minRows int) (Answer, error) {
	e, err := scanSegments(q, views, workers, minRows)
	if err != nil {
		return Answer{}, err
	}
	return e.answer()
}

// countSegments counts q over views, in columns when it can (with
// scanSegments), else over the rebuilt rows, and returns the execution
// holding the groups, to answer.
func countSegments(q Query, views []SegmentView, workers, minRows int) (*execution, error) {
	if scansInColumns(q, views) {
		return scanSegments(q, views, workers, minRows)
	}
	e := newExecution(q)
	e.batch = true
	var err *Error
	SegmentRows(views)(func(r *Row) bool {
		err = e.add(r)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// scanSegments scans views in columns, in up to workers goroutines of at
// least minRows rows each.
func scanSegments(q Query, views []SegmentView, workers, minRows int) (*execution, error) {
	parts := splitViews(views, workers, minRows)
	scans := make([]*columnScan, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, part := range parts {
		scans[i] = newColumnScan(q, MaxGroups)
		wg.Go(func() { errs[i] = scans[i].scan(part) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err // the *Error of one part is the query's
		}
	}
	for _, o := range scans[1:] {
		if err := scans[0].merge(o); err != nil {
			return nil, err
		}
	}
	return scans[0].fill(), nil
}

// minPartRows is the fewest rows worth a goroutine of their own.
const minPartRows = 200_000

// splitViews splits views into at most n runs of about equal rows, each
// of at least minRows (one run when views hold fewer).
func splitViews(views []SegmentView, n, minRows int) [][]SegmentView {
	total := 0
	for i := range views {
		total += views[i].n
	}
	n = max(1, min(n, total/minRows, len(views)))
	parts := make([][]SegmentView, 0, n)
	start, acc := 0, 0
	for i := range views {
		acc += views[i].n
		if len(parts) < n-1 && acc >= total*(len(parts)+1)/n {
			parts = append(parts, views[start:i+1])
			start = i + 1
		}
	}
	if start < len(views) || len(parts) == 0 {
		parts = append(parts, views[start:])
	}
	return parts
}

// scansInColumns reports whether ExecuteSegments answers q over views in
// columns: conversion_rate divides by a population grouped apart, and
// visitor numbers of two numberings do not compare.
func scansInColumns(q Query, views []SegmentView) bool {
	for _, m := range q.Metrics {
		if m.Kind == ConversionRate {
			return false
		}
	}
	return oneNumbering(views)
}

// oneNumbering reports whether views (but the empty ones) number their
// visitors by one VisitorNumbers.
func oneNumbering(views []SegmentView) bool {
	var numbers *VisitorNumbers
	for i := range views {
		switch {
		case views[i].n == 0:
		case numbers == nil:
			numbers = views[i].visitors
		case views[i].visitors != numbers:
			return false
		}
	}
	return true
}

// columnScan is one run of ExecuteSegments. Groups are numbered in the
// order found; their counters are slices by group number.
type columnScan struct {
	e         *execution       // the query, its time labels, and the answer
	index     map[string]int32 // labels joined by NUL -> group
	labels    [][]string       // by group
	events    []int64
	pageviews []int64
	sums      [][]int64 // by metric, then group: scaled sums of Sum and Avg
	counts    [][]int64 // by metric, then group
	visitors  bool
	// pageviewsAsked: a metric reads the groups' pageviews
	pageviewsAsked bool
	lists          [][]uint32 // by group: visitor numbers of its rows, with repeats
	recent         [1 << recentBits]uint64
	maxVisitor     int
	maxGroups      int
	key            []byte
	// per view
	group []int32 // each selected row's group, when sums need it
	cells []int32 // cell -> group+1, when the cells are few
	cellM map[uint64]int32
	lay   []cellDim
}

func newColumnScan(q Query, maxGroups int) *columnScan {
	s := &columnScan{e: newExecution(q), index: map[string]int32{},
		sums: make([][]int64, len(q.Metrics)), counts: make([][]int64, len(q.Metrics)), maxGroups: maxGroups}
	s.visitors = s.e.visitors
	for _, m := range q.Metrics {
		s.pageviewsAsked = s.pageviewsAsked || m.Kind == Pageviews
	}
	return s
}

// scan counts the rows of views.
func (s *columnScan) scan(views []SegmentView) error {
	for i := range views {
		v := &views[i]
		if v.n == 0 {
			continue
		}
		sel := s.selection(v)
		if sel == nil {
			continue
		}
		s.layout(v)
		if err := s.count(v, sel); err != nil {
			return err
		}
		s.addSums(v, sel)
	}
	return nil
}

// merge adds the groups and visitors of o, a scan of other views, to s.
func (s *columnScan) merge(o *columnScan) error {
	for g, labels := range o.labels {
		s.key = s.key[:0]
		for _, l := range labels {
			s.key = append(append(s.key, l...), 0)
		}
		sg, err := s.newGroup(labels)
		if err != nil {
			return err
		}
		s.lists[sg] = append(s.lists[sg], o.lists[g]...)
		s.events[sg] += o.events[g]
		s.pageviews[sg] += o.pageviews[g]
		for i := range s.sums {
			if o.sums[i] != nil {
				s.sums[i][sg] += o.sums[i][g]
				s.counts[i][sg] += o.counts[i][g]
			}
		}
	}
	s.maxVisitor = max(s.maxVisitor, o.maxVisitor)
	return nil
}

// selection is the bitmap of v's rows in the range that pass the filter,
// nil when none does.
func (s *columnScan) selection(v *SegmentView) []uint64 {
	from, to := s.e.from-v.hour, s.e.to-v.hour
	if to <= 0 || from >= hourMs {
		return nil
	}
	sel := ones(v.n)
	if from > 0 || to < hourMs {
		for i, t := range v.ts {
			if int64(t) < from || int64(t) >= to {
				sel[i>>6] &^= 1 << (i & 63)
			}
		}
	}
	if f := s.e.q.Filter; f.Op != 0 {
		and(sel, evalFilter(f, v))
	}
	for _, w := range sel {
		if w != 0 {
			return sel
		}
	}
	return nil
}

// ones is a bitmap of n rows, all set.
func ones(n int) []uint64 {
	b := make([]uint64, (n+63)/64)
	for i := range b {
		b[i] = math.MaxUint64
	}
	if r := n % 64; r != 0 {
		b[len(b)-1] = 1<<r - 1
	}
	return b
}

func and(a, b []uint64) {
	for i := range a {
		a[i] &= b[i]
	}
}

// evalFilter is the bitmap of v's rows that f matches.
func evalFilter(f Filter, v *SegmentView) []uint64 {
	switch f.Op {
	case And:
		out := ones(v.n)
		for _, c := range f.Children {
			and(out, evalFilter(c, v))
		}
		return out
	case Or:
		out := make([]uint64, (v.n+63)/64)
		for _, c := range f.Children {
			for i, w := range evalFilter(c, v) {
				out[i] |= w
			}
		}
		return out
	case Not:
		out := evalFilter(f.Children[0], v)
		all := ones(v.n)
		for i := range out {
			out[i] = ^out[i] & all[i]
		}
		return out
	}
	match := func(label string) uint8 {
		if f.anyClause(label) != f.Op.negated() {
			return 1
		}
		return 0
	}
	if f.Dimension.Kind == Prop {
		return propBits(v, f.Dimension.Prop, match)
	}
	c := &v.text[textField(f.Dimension.Kind)]
	table := make([]uint8, len(c.values))
	for id, val := range c.values {
		table[id] = match(label(f.Dimension.Kind, val))
	}
	return c.ids.bits(table, v.n)
}

// propBits is the bitmap of v's rows whose value of prop key matches:
// rows without the key are matched as None.
func propBits(v *SegmentView, key string, match func(string) uint8) []uint64 {
	out := make([]uint64, (v.n+63)/64)
	if match(None) == 1 {
		out = ones(v.n)
	}
	p := v.prop(key)
	if p == nil {
		return out
	}
	table := make([]uint8, len(p.values))
	for id, val := range p.values {
		table[id] = match(val)
	}
	for j, r := range p.rows {
		w, b := r>>6, r&63
		out[w] = out[w]&^(1<<b) | uint64(table[p.ids.at(j)])<<b
	}
	return out
}

func (v *SegmentView) prop(key string) *viewProp {
	for i := range v.props {
		if v.props[i].key == key {
			return &v.props[i]
		}
	}
	return nil
}

// bits is the bitmap of the n rows whose id table marks.
func (c idColumn) bits(table []uint8, n int) []uint64 {
	out := make([]uint64, (n+63)/64)
	switch c.width {
	case 0:
		if n > 0 && table[0] != 0 {
			copy(out, ones(n))
		}
	case 1:
		tableBits(c.u8, table, out)
	case 2:
		tableBits(c.u16, table, out)
	case 4:
		tableBits(c.u32, table, out)
	}
	return out
}

// tableBits sets in out the bit of each row whose id table marks, a word
// at a time in a register.
func tableBits[T uint8 | uint16 | uint32](ids []T, table []uint8, out []uint64) {
	for w := range out {
		var word uint64
		chunk := ids[w*64 : min(w*64+64, len(ids))]
		for i, id := range chunk {
			word |= uint64(table[id]) << i
		}
		out[w] |= word
	}
}

// label is the label of a text field's value as a dimension, as value
// gives it for a row: the referrer of an event that came without one is
// Direct / None, a visit field ingest could not derive is (not set).
func label(k DimensionKind, v string) string {
	switch {
	case v != "":
		return v
	case k == Referrer || k == Source:
		return DirectNone
	case k == Browser || k == BrowserVersion || k == OS || k == OSVersion || k == Country ||
		k >= UTMSource && k <= UTMTerm:
		return NotSet
	}
	return v
}

// layout sets how the cells of v are made: each row's dimensions' local
// ids (the dictionary id, the minute's label), combined into one number.
// A cell is computed only for the rows selected (cellDim.at).
func (s *columnScan) layout(v *SegmentView) {
	s.lay = s.lay[:0]
	stride := uint64(1)
	for _, d := range s.e.q.Dimensions {
		cd := cellDim{stride: stride}
		switch {
		case d.IsTime():
			s.minuteCells(v, &cd)
		case d.Kind == Prop:
			s.propCells(v, d.Prop, &cd)
		default:
			c := &v.text[textField(d.Kind)]
			cd.labels = make([]string, len(c.values))
			for id, val := range c.values {
				cd.labels[id] = label(d.Kind, val)
			}
			if len(c.values) > 1 {
				cd.ids = c.ids
			}
		}
		cd.card = uint64(len(cd.labels))
		s.lay = append(s.lay, cd)
		stride *= cd.card
	}
	s.cellM = nil
	if stride <= uint64(max(4*v.n, 1<<12)) {
		s.cells = slices.Grow(s.cells[:0], int(stride))[:stride]
		clear(s.cells)
	} else {
		s.cellM = map[uint64]int32{}
	}
}

// cellDim is how one dimension makes up a view's cells: from a text
// column's ids, the minute of the time, or a prop's ids made dense for the
// view; none of them when the dimension has one label in the view.
type cellDim struct {
	stride, card uint64
	labels       []string // local id -> label
	ids          idColumn
	minute       *[60]uint64 // minute of the hour -> local id × stride
	dense        []uint32
}

// at is row r's part of its cell.
func (d *cellDim) at(r int, ts []uint32) uint64 {
	switch {
	case d.ids.width == 1:
		return uint64(d.ids.u8[r]) * d.stride
	case d.ids.width == 2:
		return uint64(d.ids.u16[r]) * d.stride
	case d.ids.width == 4:
		return uint64(d.ids.u32[r]) * d.stride
	case d.minute != nil:
		return d.minute[ts[r]/60_000]
	case d.dense != nil:
		return uint64(d.dense[r]) * d.stride
	}
	return 0
}

// minuteCells sets d's labels, the time labels of v's minutes numbered
// within v. A bucket is a run of whole minutes, so an hour whose first
// and last minute share a label has only that one.
func (s *columnScan) minuteCells(v *SegmentView, d *cellDim) {
	first, last := s.e.timeLabel(v.hour), s.e.timeLabel(v.hour+59*60_000)
	if first == last {
		d.labels = []string{first}
		return
	}
	d.minute = new([60]uint64)
	for m := range 60 {
		l := s.e.timeLabel(v.hour + int64(m)*60_000)
		if len(d.labels) == 0 || d.labels[len(d.labels)-1] != l {
			d.labels = append(d.labels, l)
		}
		d.minute[m] = uint64(len(d.labels)-1) * d.stride
	}
}

// propCells sets d's labels, prop key's values (0, None, for rows without
// it), and each row's id of it.
func (s *columnScan) propCells(v *SegmentView, key string, d *cellDim) {
	p := v.prop(key)
	if p == nil {
		d.labels = []string{None}
		return
	}
	d.labels = p.values
	d.dense = make([]uint32, v.n)
	for j, r := range p.rows {
		d.dense[r] = p.ids.at(j)
	}
}

// count counts each selected row in its group.
func (s *columnScan) count(v *SegmentView, sel []uint64) error {
	var pv []uint64
	if s.pageviewsAsked {
		pv = s.pageviewBits(v)
	}
	needGroup := s.needsGroups()
	if needGroup {
		s.group = slices.Grow(s.group[:0], v.n)[:v.n]
	}
	for w, word := range sel {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			word &= word - 1
			r := w<<6 | b
			var cell uint64
			for i := range s.lay {
				cell += s.lay[i].at(r, v.ts)
			}
			var g int32
			if s.cellM == nil && s.cells[cell] != 0 {
				g = s.cells[cell] - 1
			} else {
				var err error
				if g, err = s.findGroup(cell); err != nil {
					return err
				}
			}
			s.events[g]++
			if pv != nil {
				s.pageviews[g] += int64(pv[w] >> b & 1)
			}
			if needGroup {
				s.group[r] = g
			}
			if s.visitors {
				s.addVisitor(g, v.visitor[r])
			}
		}
	}
	return nil
}

func (s *columnScan) needsGroups() bool {
	for _, m := range s.e.q.Metrics {
		if m.Kind == Sum || m.Kind == Avg {
			return true
		}
	}
	return false
}

// pageviewBits is the bitmap of v's rows that are pageviews.
func (s *columnScan) pageviewBits(v *SegmentView) []uint64 {
	c := &v.text[fieldGoal]
	table := make([]uint8, len(c.values))
	for id, val := range c.values {
		if val == "pageview" {
			table[id] = 1
		}
	}
	return c.ids.bits(table, v.n)
}

// findGroup is the group of cell when the table of cells does not hold
// it yet: found or made on the cell's first row.
func (s *columnScan) findGroup(cell uint64) (int32, error) {
	if g, ok := s.cellM[cell]; ok && s.cellM != nil {
		return g, nil
	}
	s.key = s.key[:0]
	for _, d := range s.lay {
		s.key = append(append(s.key, d.labels[cell/d.stride%d.card]...), 0)
	}
	g, ok := s.index[string(s.key)]
	if !ok {
		labels := make([]string, len(s.lay))
		for i, d := range s.lay {
			labels[i] = d.labels[cell/d.stride%d.card]
		}
		var err error
		if g, err = s.newGroup(labels); err != nil {
			return 0, err
		}
	}
	if s.cellM == nil {
		s.cells[cell] = g + 1
	} else {
		s.cellM[cell] = g
	}
	return g, nil
}

// newGroup is the group of labels, whose key is in s.key, made if new.
func (s *columnScan) newGroup(labels []string) (int32, error) {
	if g, ok := s.index[string(s.key)]; ok {
		return g, nil
	}
	if len(s.labels) >= s.maxGroups {
		return 0, errf("dimensions", "more than "+strconv.Itoa(s.maxGroups)+" rows: add a filter or a coarser time dimension")
	}
	g := int32(len(s.labels))
	s.index[string(s.key)] = g
	s.labels = append(s.labels, labels)
	s.events = append(s.events, 0)
	s.pageviews = append(s.pageviews, 0)
	s.lists = append(s.lists, nil)
	for i := range s.sums {
		s.sums[i] = append(s.sums[i], 0)
		s.counts[i] = append(s.counts[i], 0)
	}
	return g, nil
}

// addVisitor adds visitor to the list of g, unless it was the last one
// added in its slot: visitors come back, and the lists are then shorter.
func (s *columnScan) addVisitor(g int32, visitor uint32) {
	if visitor == 0 {
		return
	}
	p := uint64(g)<<32 | uint64(visitor)
	slot := &s.recent[(p*0x9e3779b97f4a7c15)>>(64-recentBits)]
	if *slot == p {
		return
	}
	*slot = p
	s.lists[g] = append(s.lists[g], visitor)
	s.maxVisitor = max(s.maxVisitor, int(visitor))
}

// addSums adds the numbers of the Sum and Avg props of the selected rows.
func (s *columnScan) addSums(v *SegmentView, sel []uint64) {
	for i, m := range s.e.q.Metrics {
		if m.Kind != Sum && m.Kind != Avg {
			continue
		}
		p := v.prop(m.Prop)
		if p == nil || p.isNum == nil {
			continue
		}
		for j, r := range p.rows {
			if !p.isNum[j] || sel[r>>6]>>(r&63)&1 == 0 {
				continue
			}
			g := s.group[r]
			s.sums[i][g] += int64(math.Round(p.nums[j] * sumScale))
			s.counts[i][g]++
		}
	}
}

// fill counts the distinct visitors of each group (s has merged the
// other scans) and returns the execution holding the groups, which
// answers as Execute does.
func (s *columnScan) fill() *execution {
	visitors, total := s.countVisitors()
	e := s.e
	e.groups = make([]*group, len(s.labels))
	for g := range s.labels {
		grp := &group{labels: s.labels[g], events: s.events[g], pageviews: s.pageviews[g], visitors: visitors[g],
			sums: make([]int64, len(s.sums)), counts: make([]int64, len(s.sums))}
		for i := range s.sums {
			if s.sums[i] != nil {
				grp.sums[i], grp.counts[i] = s.sums[i][g], s.counts[i][g]
			}
		}
		e.groups[g] = grp
	}
	e.total, e.totalN = nil, total
	return e
}

// countVisitors is the distinct visitors of each group, and of all
// groups when a Percentage needs it. A group's list is counted in a
// bitmap of every visitor number, cleared after by the same list: memory
// read in order but for one bitmap small enough for the cache (3,000,000
// visitors are 375 KB), where sorting the lists moved every number many
// times. Two goroutines take half the groups each.
func (s *columnScan) countVisitors() (visitors []int, total int) {
	visitors = make([]int, len(s.lists))
	if !s.visitors {
		return visitors, 0
	}
	words := s.maxVisitor/64 + 1
	half := len(s.lists) / 2
	var wg sync.WaitGroup
	for _, part := range [][2]int{{0, half}, {half, len(s.lists)}} {
		wg.Go(func() {
			seen := make([]uint64, words)
			for g := part[0]; g < part[1]; g++ {
				visitors[g] = distinct(s.lists[g], seen)
			}
		})
	}
	wg.Wait()
	if s.e.total == nil {
		return visitors, 0
	}
	seen := make([]uint64, words)
	for _, l := range s.lists {
		for _, v := range l {
			seen[v>>6] |= 1 << (v & 63)
		}
	}
	for _, w := range seen {
		total += bits.OnesCount64(w)
	}
	return visitors, total
}

// distinct is how many distinct numbers list holds, counted in seen,
// which it leaves clear.
func distinct(list []uint32, seen []uint64) int {
	n := 0
	for _, v := range list {
		w, b := v>>6, uint64(1)<<(v&63)
		if seen[w]&b == 0 {
			seen[w] |= b
			n++
		}
	}
	for _, v := range list {
		seen[v>>6] = 0
	}
	return n
}
