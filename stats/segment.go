package stats

import (
	"errors"
	"sync"
)

// Segment holds the rows of one hour of one site in columns, the form a
// query node keeps between queries (docs/queries.md): each text field is
// a column of small integers into the segment's dictionary of that
// field, so a filter is evaluated once per distinct value rather than
// once per row, and a breakdown groups by integers; visitors are dense
// numbers of the site's VisitorNumbers, so a union over many hours sorts small
// integers. Besides a handful of dictionary strings it holds no pointers
// per row, which the garbage collector would otherwise scan on every
// cycle.
//
// Append adds rows; View takes a snapshot a query reads without locks
// while more rows are appended. Not safe for concurrent Append.
type Segment struct {
	hour     int64
	visitors *VisitorNumbers
	n        int
	ts       []uint32 // ms since hour
	text     [textFields]textColumn
	visitor  []uint32 // numbers of visitors; 0: the row has none
	props    []*propColumn
	propAt   map[string]int
	bytes    int64
	order    *rowOrder // the rows in visitOrder, made by the first query of visits
}

// The text fields of a row, in the order of textKinds.
const (
	fieldGoal = iota
	fieldPage
	fieldHostname
	fieldReferrer
	fieldDevice
	fieldBrowser
	fieldBrowserVersion
	fieldOS
	fieldOSVersion
	fieldCountry
	fieldSource
	fieldUTMSource
	fieldUTMMedium
	fieldUTMCampaign
	fieldUTMContent
	fieldUTMTerm
	fieldEntryPage
	fieldExitPage
	textFields
)

// textKinds are the dimensions of the text fields. A stored row's source
// and UTM tags are its event's own, and it has no entry and exit page
// (columns that cost nothing, all one value); ExecuteVisits scans views
// whose columns of these are each row's visit's (sessions.visitViews).
var textKinds = [textFields]DimensionKind{Goal, Page, Hostname, Referrer, Device,
	Browser, BrowserVersion, OS, OSVersion, Country,
	Source, UTMSource, UTMMedium, UTMCampaign, UTMContent, UTMTerm, EntryPage, ExitPage}

// textValues are r's text fields in field order.
func textValues(r *Row) [textFields]string {
	return [textFields]string{r.Goal, r.Page, r.Hostname, r.Referrer, r.Device,
		r.Browser, r.BrowserVersion, r.OS, r.OSVersion, r.Country,
		r.Source, r.UTMSource, r.UTMMedium, r.UTMCampaign, r.UTMContent, r.UTMTerm, r.EntryPage, r.ExitPage}
}

// setTextValues sets r's text fields from vals, in field order.
func setTextValues(r *Row, vals *[textFields]string) {
	r.Goal, r.Page, r.Hostname, r.Referrer, r.Device = vals[fieldGoal], vals[fieldPage], vals[fieldHostname], vals[fieldReferrer], vals[fieldDevice]
	r.Browser, r.BrowserVersion, r.OS, r.OSVersion, r.Country = vals[fieldBrowser], vals[fieldBrowserVersion], vals[fieldOS], vals[fieldOSVersion], vals[fieldCountry]
	r.Source, r.UTMSource, r.UTMMedium, r.UTMCampaign, r.UTMContent, r.UTMTerm = vals[fieldSource], vals[fieldUTMSource], vals[fieldUTMMedium], vals[fieldUTMCampaign], vals[fieldUTMContent], vals[fieldUTMTerm]
	r.EntryPage, r.ExitPage = vals[fieldEntryPage], vals[fieldExitPage]
}

// textField is the field of a text dimension, or -1.
func textField(k DimensionKind) int {
	for f, tk := range textKinds {
		if tk == k {
			return f
		}
	}
	return -1
}

// textColumn is one text field: ids of the rows into dict.
type textColumn struct {
	ids  idColumn
	dict dictionary
}

// propColumn is one prop key, sparse: only the rows that carry it, in
// row order, since most keys are on a few events and a dense column per
// key would let a client that sends many keys multiply the segment.
type propColumn struct {
	key   string
	rows  []uint32 // ascending
	ids   idColumn // text value of each entry, into dict; dict.values[0] is None, for absent rows
	dict  dictionary
	isNum []bool    // nil until an entry is a number
	nums  []float64 // the numbers, where isNum
}

// dictionary numbers the distinct values of a column in order of first
// appearance. values only grows, so a snapshot of it stays valid.
type dictionary struct {
	values []string
	ids    map[string]uint32
}

func (d *dictionary) id(v string) (id uint32, added bool) {
	if id, ok := d.ids[v]; ok {
		return id, false
	}
	if d.ids == nil {
		d.ids = map[string]uint32{}
	}
	id = uint32(len(d.values))
	d.values = append(d.values, v)
	d.ids[v] = id
	return id, true
}

// idColumn is a column of dictionary ids in the narrowest of 0, 1, 2 or
// 4 bytes that holds every id so far: most fields have under 256 values
// in an hour, and a query reads its columns whole. Width 0 holds nothing
// while every id is 0: the hours of a site without UTM tags, or of a
// tracker that sends no referrer, cost nothing for those fields.
type idColumn struct {
	width int // 0, 1, 2 or 4
	zeros int // the rows of width 0
	u8    []uint8
	u16   []uint16
	u32   []uint32
}

// append adds a row of id and returns the bytes it added besides its
// width: the zeros written out when a column of width 0 gets its first
// other id.
func (c *idColumn) append(id uint32) (grown int) {
	if c.width == 0 {
		if id == 0 {
			c.zeros++
			return 0
		}
		grown = c.zeros
		c.u8, c.width = make([]uint8, c.zeros, 2*c.zeros+16), 1
	}
	switch {
	case c.width == 4 || id > 0xffff:
		if c.width != 4 {
			c.u32 = widen[uint32](c.u8, c.u16, c.width)
			c.u8, c.u16, c.width = nil, nil, 4
		}
		c.u32 = append(c.u32, id)
	case c.width == 2 || id > 0xff:
		if c.width != 2 {
			c.u16 = widen[uint16](c.u8, nil, c.width)
			c.u8, c.width = nil, 2
		}
		c.u16 = append(c.u16, uint16(id))
	default:
		c.width = 1
		c.u8 = append(c.u8, uint8(id))
	}
	return grown
}

func widen[T uint16 | uint32](u8 []uint8, u16 []uint16, width int) []T {
	out := make([]T, 0, 2*max(len(u8), len(u16))+16)
	if width == 2 {
		for _, v := range u16 {
			out = append(out, T(v))
		}
		return out
	}
	for _, v := range u8 {
		out = append(out, T(v))
	}
	return out
}

func (c idColumn) at(i int) uint32 {
	switch c.width {
	case 1:
		return uint32(c.u8[i])
	case 2:
		return uint32(c.u16[i])
	case 0:
		return 0
	}
	return c.u32[i]
}

// head is the column's first n ids: what a View reads.
func (c idColumn) head(n int) idColumn {
	switch c.width {
	case 1:
		c.u8 = c.u8[:n:n]
	case 2:
		c.u16 = c.u16[:n:n]
	case 4:
		c.u32 = c.u32[:n:n]
	}
	return c
}

// VisitorNumbers numbers the visitor hashes of a site's segments 1, 2, 3, ...
// so that segments built with the same VisitorNumbers unite visitors by number.
// A site's VisitorNumbers only grows; its owner starts a new one (and new
// segments) when most of its numbers belong to rows no longer kept. Safe
// for concurrent use.
type VisitorNumbers struct {
	mu     sync.RWMutex
	ids    map[uint64]uint32
	hashes []uint64 // by number; hashes[0] is 0, no visitor
}

// NewVisitorNumbers returns an empty numbering.
func NewVisitorNumbers() *VisitorNumbers {
	return &VisitorNumbers{ids: map[uint64]uint32{}, hashes: []uint64{0}}
}

// Len is how many visitors are numbered.
func (v *VisitorNumbers) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.hashes) - 1
}

func (v *VisitorNumbers) hashesNow() []uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.hashes
}

// VisitorBytes is what one numbered visitor costs: its map entry and hash.
const VisitorBytes = 48

// NewSegment returns an empty segment of the hour starting at hour (ms),
// numbering visitors with v.
func NewSegment(hour int64, v *VisitorNumbers) *Segment {
	return &Segment{hour: hour, visitors: v, propAt: map[string]int{}, order: &rowOrder{}}
}

// hourMs is the span of a segment: the rows of one hour (factrow.HourMs,
// which imports this package).
const hourMs = 3_600_000

// errOutsideHour is Append's error for a row outside its segment's hour.
var errOutsideHour = errors.New("row time outside its hour")

// Len is how many rows the segment holds.
func (s *Segment) Len() int { return s.n }

// Bytes is about what the segment's columns and dictionaries take.
func (s *Segment) Bytes() int64 { return s.bytes }

// Append adds rows, each of the segment's hour (TS in [hour, hour+1h)).
func (s *Segment) Append(rows []Row) error {
	for i := range rows {
		if off := rows[i].TS - s.hour; off < 0 || off >= hourMs {
			return errOutsideHour
		}
	}
	s.numberVisitors(rows)
	for i := range rows {
		s.appendRow(&rows[i])
	}
	return nil
}

// numberVisitors appends the number of each row's visitor to s.visitor,
// under one lock for all rows.
func (s *Segment) numberVisitors(rows []Row) {
	v := s.visitors
	v.mu.Lock()
	defer v.mu.Unlock()
	for i := range rows {
		h := rows[i].Visitor
		id, ok := v.ids[h]
		if !ok && h != 0 {
			id = uint32(len(v.hashes))
			v.ids[h] = id
			v.hashes = append(v.hashes, h)
		}
		s.visitor = append(s.visitor, id)
	}
	s.bytes += int64(4 * len(rows))
}

func (s *Segment) appendRow(r *Row) {
	s.ts = append(s.ts, uint32(r.TS-s.hour))
	s.bytes += 4 + 4 // its time, and its place in the order of visits (rowOrder)
	for f, v := range textValues(r) {
		c := &s.text[f]
		id, added := c.dict.id(v)
		if added {
			s.bytes += int64(len(v)) + 64
		}
		s.bytes += int64(c.ids.append(id) + c.ids.width)
	}
	for i := range r.Props {
		s.appendProp(&r.Props[i])
	}
	s.n++
}

func (s *Segment) appendProp(p *RowProp) {
	at, ok := s.propAt[p.Key]
	if !ok {
		at = len(s.props)
		s.propAt[p.Key] = at
		// Id 0 is the label of rows without the key; a value "(none)"
		// gets an id of its own with the same label.
		c := &propColumn{key: p.Key, dict: dictionary{values: []string{None}}}
		s.props = append(s.props, c)
		s.bytes += int64(len(p.Key)) + 128
	}
	c := s.props[at]
	if k := len(c.rows); k > 0 && c.rows[k-1] == uint32(s.n) {
		return // a second prop of the same key: a Row holds one per key
	}
	id, added := c.dict.id(p.Value)
	if added {
		s.bytes += int64(len(p.Value)) + 64
	}
	c.rows = append(c.rows, uint32(s.n))
	s.bytes += int64(4 + c.ids.append(id) + c.ids.width)
	if p.IsNum && c.isNum == nil {
		c.isNum = make([]bool, len(c.rows)-1, cap(c.rows))
		c.nums = make([]float64, len(c.rows)-1, cap(c.rows))
		s.bytes += int64(9 * len(c.isNum))
	}
	if c.isNum != nil {
		c.isNum = append(c.isNum, p.IsNum)
		c.nums = append(c.nums, p.Num)
		s.bytes += 9
	}
}

// SegmentView is a snapshot of a Segment: its first Len rows, which later
// Appends never change. Safe for concurrent use.
type SegmentView struct {
	hour     int64
	n        int
	visitors *VisitorNumbers
	hashes   []uint64
	ts       []uint32
	text     [textFields]viewColumn
	visitor  []uint32
	props    []viewProp
	order    *rowOrder
}

type viewColumn struct {
	ids    idColumn
	values []string
}

type viewProp struct {
	key    string
	rows   []uint32
	ids    idColumn
	values []string
	isNum  []bool
	nums   []float64
}

// View is a snapshot of the rows appended so far. The caller must not
// Append concurrently with View.
func (s *Segment) View() SegmentView {
	v := SegmentView{hour: s.hour, n: s.n, visitors: s.visitors, hashes: s.visitors.hashesNow(), order: s.order,
		ts: s.ts[:s.n:s.n], visitor: s.visitor[:s.n:s.n]}
	for f := range s.text {
		c := &s.text[f]
		v.text[f] = viewColumn{ids: c.ids.head(s.n), values: c.dict.values[:len(c.dict.values):len(c.dict.values)]}
	}
	v.props = make([]viewProp, len(s.props))
	for i, c := range s.props {
		k := len(c.rows)
		p := viewProp{key: c.key, rows: c.rows[:k:k], ids: c.ids.head(k), values: c.dict.values[:len(c.dict.values):len(c.dict.values)]}
		if c.isNum != nil {
			p.isNum, p.nums = c.isNum[:k:k], c.nums[:k:k]
		}
		v.props[i] = p
	}
	return v
}

// Hour is the start of the segment's hour (ms).
func (v SegmentView) Hour() int64 { return v.hour }

// Len is how many rows the view holds.
func (v SegmentView) Len() int { return v.n }

// Rows appends to dst rows [from, to) of the view, as they were appended.
func (v SegmentView) Rows(from, to int, dst []Row) []Row {
	start := len(dst)
	for i := from; i < to; i++ {
		r := Row{TS: v.hour + int64(v.ts[i]), Visitor: v.hashes[v.visitor[i]]}
		var vals [textFields]string
		for f := range vals {
			vals[f] = v.text[f].value(i)
		}
		setTextValues(&r, &vals)
		dst = append(dst, r)
	}
	for _, p := range v.props {
		j := searchRows(p.rows, uint32(from))
		for ; j < len(p.rows) && int(p.rows[j]) < to; j++ {
			rp := RowProp{Key: p.key, Value: p.values[p.ids.at(j)]}
			if p.isNum != nil && p.isNum[j] {
				rp.Num, rp.IsNum = p.nums[j], true
			}
			r := &dst[start+int(p.rows[j])-from]
			r.Props = append(r.Props, rp)
		}
	}
	return dst
}

func (c viewColumn) value(i int) string { return c.values[c.ids.at(i)] }

// searchRows is the index of the first entry of rows at or after row.
func searchRows(rows []uint32, row uint32) int {
	lo, hi := 0, len(rows)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rows[m] < row {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// SegmentRows yields the rows of views, rebuilt in chunks: Execute's
// input for what ExecuteSegments does not scan in columns.
func SegmentRows(views []SegmentView) func(yield func(*Row) bool) {
	return func(yield func(*Row) bool) {
		var buf []Row
		for _, v := range views {
			for from := 0; from < v.n; from += 4096 {
				buf = v.Rows(from, min(from+4096, v.n), buf[:0])
				for i := range buf {
					if !yield(&buf[i]) {
						return
					}
				}
			}
		}
	}
}
