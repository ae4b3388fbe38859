// Package factrow is the binary form of the fact rows the Stats API scans
// (docs/queries.md, design B): one row per counted event, appended by the
// apply script to the string of the event's site and hour in the same
// script as the counters and the checkpoint, so rows are exactly once like
// every other aggregate, and read back by query nodes.
//
// A row is self-delimited (a length, then the body), so the string of an
// hour is the plain concatenation of its rows in apply order and one
// commit's rows are one APPEND. The body starts with a version byte: a
// reader skips rows of a version it does not know instead of misreading
// them. Version 2 adds the visit fields ingest derives (source, UTM tags,
// browser, os, their versions, country) after the props; version 1 rows,
// appended before, still read, with those fields empty.
package factrow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/stats"
)

// HourMs is the span of one row string: rows are kept per (site, hour).
const HourMs = int64(3_600_000)

// HourOf is the start of the hour holding ts (ms; floor, also before 1970).
func HourOf(ts int64) int64 {
	h := ts / HourMs * HourMs
	if h > ts {
		h -= HourMs
	}
	return h
}

const (
	version1 = 1
	version2 = 2 // version 1 and the visit fields
)

// Prop kinds in a row.
const (
	propText = 0
	propNum  = 1
)

// FromEvent is the row of e counted at ts (the time the aggregator's time
// rule gave it). Every text is cut as the aggregates cut dimension values
// (metric.CutValue), so a breakdown here and in /v1/query name the same
// values.
func FromEvent(e *event.Event, ts int64) stats.Row {
	r := stats.Row{
		TS:       ts,
		Goal:     metric.CutValue(e.Type),
		Page:     metric.CutValue(e.Path),
		Hostname: metric.CutValue(Hostname(e.URL)),
		Referrer: metric.CutValue(e.RefHost),
		Device:   metric.CutValue(e.Device),
		Visitor:  VisitorHash(e.UID),
	}
	v := visitFields(&e.Visit)
	setVisitFields(&r, &v)
	if len(e.Props) > 0 {
		r.Props = make([]stats.RowProp, 0, len(e.Props))
		for k, v := range e.Props {
			p := stats.RowProp{Key: metric.CutValue(k)}
			switch v := v.(type) {
			case float64:
				p.Num, p.IsNum = v, true
				p.Value = strconv.FormatFloat(v, 'f', -1, 64)
			case string:
				p.Value = metric.CutValue(v)
			case bool:
				p.Value = strconv.FormatBool(v)
			default:
				p.Value = metric.CutValue(fmt.Sprint(v))
			}
			r.Props = append(r.Props, p)
		}
	}
	return r
}

// Hostname is the host of a page URL as ingest reads it (event.URLHost):
// lower case, without port or user info, "" for a relative URL.
func Hostname(u string) string { return event.URLHost(u) }

// VisitorHash is the 64-bit visitor of a uid: FNV-1a, stable across
// processes and versions so that a replay builds the same rows; 0 (no
// visitor) for an empty uid.
func VisitorHash(uid string) uint64 {
	if uid == "" {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(uid))
	v := h.Sum64()
	if v == 0 {
		v = 1 // 0 means "no visitor"
	}
	return v
}

// AppendEvent appends the row of e counted at ts (FromEvent's row) to the
// rows of the hour starting at hour, without building the Row: it runs
// once per event in the aggregator, where a Row's props slice and the text
// form of numbers are allocations nobody reads.
func AppendEvent(b []byte, e *event.Event, ts, hour int64) []byte {
	var lenBuf [binary.MaxVarintLen32]byte
	start := len(b)
	b = append(b, lenBuf[:]...)
	at := len(b)
	b = append(b, version2)
	b = binary.AppendUvarint(b, uint64(ts-hour))
	b = putStr(b, metric.CutValue(e.Type))
	b = putStr(b, metric.CutValue(e.Path))
	b = putStr(b, metric.CutValue(Hostname(e.URL)))
	b = putStr(b, metric.CutValue(e.RefHost))
	b = putStr(b, metric.CutValue(e.Device))
	b = binary.LittleEndian.AppendUint64(b, VisitorHash(e.UID))
	b = binary.AppendUvarint(b, uint64(len(e.Props)))
	for k, v := range e.Props {
		b = putStr(b, metric.CutValue(k))
		switch v := v.(type) {
		case float64:
			b = append(b, propNum)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		case string:
			b = append(b, propText)
			b = putStr(b, metric.CutValue(v))
		case bool:
			b = append(b, propText)
			b = putStr(b, strconv.FormatBool(v))
		default:
			b = append(b, propText)
			b = putStr(b, metric.CutValue(fmt.Sprint(v)))
		}
	}
	for _, s := range visitFields(&e.Visit) {
		b = putStr(b, s)
	}
	return frame(b, start, at)
}

// visitFieldCount is how many visit fields a version 2 row ends with.
const visitFieldCount = 11

// visitFields are the visit fields of v, cut as every text of a row, in
// the order of a version 2 row.
func visitFields(v *event.Visit) [visitFieldCount]string {
	return [visitFieldCount]string{
		metric.CutValue(v.Source), metric.CutValue(v.UTMSource), metric.CutValue(v.UTMMedium),
		metric.CutValue(v.UTMCampaign), metric.CutValue(v.UTMContent), metric.CutValue(v.UTMTerm),
		metric.CutValue(v.Browser), metric.CutValue(v.BrowserVersion), metric.CutValue(v.OS),
		metric.CutValue(v.OSVersion), metric.CutValue(v.Country),
	}
}

// rowVisitFields are r's visit fields in the order of a version 2 row.
func rowVisitFields(r *stats.Row) [visitFieldCount]string {
	return [visitFieldCount]string{r.Source, r.UTMSource, r.UTMMedium, r.UTMCampaign, r.UTMContent, r.UTMTerm,
		r.Browser, r.BrowserVersion, r.OS, r.OSVersion, r.Country}
}

func setVisitFields(r *stats.Row, v *[visitFieldCount]string) {
	r.Source, r.UTMSource, r.UTMMedium, r.UTMCampaign, r.UTMContent, r.UTMTerm = v[0], v[1], v[2], v[3], v[4], v[5]
	r.Browser, r.BrowserVersion, r.OS, r.OSVersion, r.Country = v[6], v[7], v[8], v[9], v[10]
}

// frame moves the body written at b[at:] right behind its uvarint length
// at b[start:], where at-start bytes were reserved for it.
func frame(b []byte, start, at int) []byte {
	var lenBuf [binary.MaxVarintLen32]byte
	n := binary.PutUvarint(lenBuf[:], uint64(len(b)-at))
	copy(b[start:], lenBuf[:n])
	return append(b[:start+n], b[at:]...)
}

// Append appends r as a row of the hour starting at hour. r.TS must lie in
// [hour, hour+HourMs).
func Append(b []byte, r *stats.Row, hour int64) []byte {
	var lenBuf [binary.MaxVarintLen32]byte
	start := len(b)
	b = append(b, lenBuf[:]...)
	at := len(b)
	b = append(b, version2)
	b = binary.AppendUvarint(b, uint64(r.TS-hour))
	b = putStr(b, r.Goal)
	b = putStr(b, r.Page)
	b = putStr(b, r.Hostname)
	b = putStr(b, r.Referrer)
	b = putStr(b, r.Device)
	b = binary.LittleEndian.AppendUint64(b, r.Visitor)
	b = binary.AppendUvarint(b, uint64(len(r.Props)))
	for i := range r.Props {
		p := &r.Props[i]
		b = putStr(b, p.Key)
		if p.IsNum {
			b = append(b, propNum)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Num))
		} else {
			b = append(b, propText)
			b = putStr(b, p.Value)
		}
	}
	for _, s := range rowVisitFields(r) {
		b = putStr(b, s)
	}
	return frame(b, start, at)
}

func putStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// ErrCorrupt is wrapped by Decode's errors: the bytes are not rows.
var ErrCorrupt = errors.New("factrow: corrupt rows")

// Decoder decodes row strings. It interns the texts it decodes, so the
// rows of many hours share one copy of each page, referrer and goal. Not
// safe for concurrent use.
type Decoder struct {
	strs map[string]string
}

// NewDecoder returns a Decoder with an empty intern table.
func NewDecoder() *Decoder { return &Decoder{strs: map[string]string{}} }

// Decode appends to dst the rows of blob, the string of the hour starting
// at hour. A row of an unknown version is skipped; bytes that are not a
// row are an error wrapping ErrCorrupt, with the rows before them decoded.
func (d *Decoder) Decode(dst []stats.Row, blob []byte, hour int64) ([]stats.Row, error) {
	// Room for the rows at once (a row is rarely under 90 bytes): growing
	// an hour's slice row by row copied it some twenty times over.
	dst = slices.Grow(dst, len(blob)/90)
	for off := 0; off < len(blob); {
		n, k := binary.Uvarint(blob[off:])
		if k <= 0 || n > uint64(len(blob)-off-k) {
			return dst, fmt.Errorf("%w: row length at byte %d", ErrCorrupt, off)
		}
		body := blob[off+k : off+k+int(n)]
		off += k + int(n)
		if len(body) == 0 || body[0] != version1 && body[0] != version2 {
			continue
		}
		r, err := d.row(body[1:], hour, body[0])
		if err != nil {
			return dst, fmt.Errorf("%w: row at byte %d: %v", ErrCorrupt, off-int(n)-k, err)
		}
		dst = append(dst, r)
	}
	return dst, nil
}

func (d *Decoder) row(b []byte, hour int64, version byte) (stats.Row, error) {
	rd := reader{b: b, d: d}
	r := stats.Row{TS: hour + int64(rd.uvarint())}
	r.Goal, r.Page, r.Hostname, r.Referrer, r.Device = rd.str(), rd.str(), rd.str(), rd.str(), rd.str()
	r.Visitor = rd.u64()
	np := rd.uvarint()
	if np > uint64(len(rd.b)) { // each prop takes at least two bytes
		return r, errors.New("prop count past the row")
	}
	if np > 0 {
		r.Props = make([]stats.RowProp, 0, np)
	}
	for range np {
		p := stats.RowProp{Key: rd.str()}
		switch rd.byte1() {
		case propNum:
			p.Num, p.IsNum = math.Float64frombits(rd.u64()), true
			p.Value = strconv.FormatFloat(p.Num, 'f', -1, 64)
		case propText:
			p.Value = rd.str()
		default:
			return r, errors.New("unknown prop kind")
		}
		r.Props = append(r.Props, p)
	}
	if version == version2 {
		var v [visitFieldCount]string
		for i := range v {
			v[i] = rd.str()
		}
		setVisitFields(&r, &v)
	}
	if rd.err != nil {
		return r, rd.err
	}
	if len(rd.b) != 0 {
		return r, errors.New("bytes after the row")
	}
	if r.TS-hour >= HourMs {
		return r, errors.New("time past its hour")
	}
	return r, nil
}

var errShort = errors.New("truncated")

type reader struct {
	b   []byte
	d   *Decoder
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errShort
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if uint64(len(r.b)) < n {
		r.fail()
		return ""
	}
	raw := r.b[:n]
	r.b = r.b[n:]
	if s, ok := r.d.strs[string(raw)]; ok {
		return s
	}
	s := string(raw)
	r.d.strs[s] = s
	return s
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) byte1() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0xff
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}
