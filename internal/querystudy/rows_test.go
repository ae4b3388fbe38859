package querystudy

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/pulsehq/pulse/event"
)

// B's row formats. A plain row is what the apply script APPENDs to the
// string of (site, hour) as events are applied: self-contained, so a
// batch's rows are one APPEND with no state in Redis. A compacted hour is
// the same rows rewritten once the hour is closed, with a dictionary per
// string column and per visitor: what the hour costs from then on.

var errShort = errors.New("row: truncated")

func putStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendPlainRow encodes ev (ts relative to its hour).
func appendPlainRow(b []byte, ev *event.Event, hourStart int64) []byte {
	plan, _ := ev.Props["plan"].(string)
	price, has := ev.Props["price"].(float64)
	return appendPlainFields(b, ev.TS-hourStart, ev.Type, ev.Path, hostOf(ev.URL), ev.RefHost, ev.Device,
		visitorHash(ev.UID), plan, price, has)
}

// appendSegmentRow encodes row i of s as a plain row.
func appendSegmentRow(b []byte, s *segment, i int) []byte {
	var price float64
	has := false
	for k, at := range s.priceAt {
		if at == uint32(i) {
			price, has = s.price[k], true
		}
	}
	return appendPlainFields(b, int64(s.ts[i]), s.goals.values[s.goal[i]], s.pages.values[s.page[i]],
		s.hosts.values[s.host[i]], s.refs.values[s.ref[i]], s.devices.values[s.device[i]], s.visitor[i],
		s.plans.values[s.plan[i]], price, has)
}

func appendPlainFields(b []byte, ts int64, goal, page, host, ref, device string, visitor uint64, plan string, price float64, hasPrice bool) []byte {
	b = binary.AppendUvarint(b, uint64(ts))
	b = putStr(b, goal)
	b = putStr(b, page)
	b = putStr(b, host)
	b = putStr(b, ref)
	b = putStr(b, device)
	b = binary.LittleEndian.AppendUint64(b, visitor)
	b = putStr(b, plan)
	if hasPrice {
		b = append(b, 1)
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(price))
	}
	return append(b, 0)
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if uint64(len(r.b)) < n {
		r.err = errShort
		r.b = nil
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.err = errShort
		r.b = nil
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) byte1() byte {
	if len(r.b) < 1 {
		r.err = errShort
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// decodePlain appends the plain rows of blob to seg.
func decodePlain(blob []byte, seg *segment) error {
	r := &reader{b: blob}
	for len(r.b) > 0 && r.err == nil {
		ts := seg.start + int64(r.uvarint())
		goal, page, host, ref, device := r.str(), r.str(), r.str(), r.str(), r.str()
		v := r.u64()
		plan := r.str()
		var price float64
		has := r.byte1() == 1
		if has {
			price = math.Float64frombits(r.u64())
		}
		if r.err == nil {
			seg.addFields(ts, goal, device, plan, page, ref, host, v, price, has)
		}
	}
	return r.err
}

// compact encodes a closed hour column by column, fixed width, with its
// dictionaries, so decoding is a copy per column and no string is hashed
// per row: ts uint32, goal/device/plan uint8, page/ref/host uint16,
// visitor uint32 (index into the hour's visitor dictionary), then the
// sparse price column (row uint32, value float64).
func compact(seg *segment) []byte {
	var b []byte
	b = binary.AppendUvarint(b, uint64(seg.start))
	for _, d := range []*dict{&seg.goals, &seg.devices, &seg.plans, &seg.pages, &seg.refs, &seg.hosts} {
		b = binary.AppendUvarint(b, uint64(len(d.values)))
		for _, v := range d.values {
			b = putStr(b, v)
		}
	}
	vid := map[uint64]uint32{}
	var vs []uint64
	for _, v := range seg.visitor {
		if _, ok := vid[v]; !ok {
			vid[v] = uint32(len(vs))
			vs = append(vs, v)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(seg.ts)))
	b = binary.AppendUvarint(b, uint64(len(seg.priceAt)))
	for _, t := range seg.ts {
		b = binary.LittleEndian.AppendUint32(b, t)
	}
	b = append(b, seg.goal...)
	b = append(b, seg.device...)
	b = append(b, seg.plan...)
	for _, col := range [][]uint16{seg.page, seg.ref, seg.host} {
		for _, v := range col {
			b = binary.LittleEndian.AppendUint16(b, v)
		}
	}
	for _, v := range seg.visitor {
		b = binary.LittleEndian.AppendUint32(b, vid[v])
	}
	for k, at := range seg.priceAt {
		b = binary.LittleEndian.AppendUint32(b, at)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(seg.price[k]))
	}
	return b
}

// decodeCompact is compact's inverse.
func decodeCompact(blob []byte) (*segment, error) {
	r := &reader{b: blob}
	seg := &segment{start: int64(r.uvarint())}
	for _, d := range []*dict{&seg.goals, &seg.devices, &seg.plans, &seg.pages, &seg.refs, &seg.hosts} {
		n := r.uvarint()
		for range n {
			d.id(r.str())
		}
	}
	vs := make([]uint64, r.uvarint())
	for i := range vs {
		vs[i] = r.u64()
	}
	n, np := int(r.uvarint()), int(r.uvarint())
	if r.err != nil || len(r.b) < n*(4+3+6+4)+np*12 {
		return nil, errShort
	}
	b := r.b
	seg.ts = make([]uint32, n)
	for i := range seg.ts {
		seg.ts[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	b = b[4*n:]
	seg.goal, seg.device, seg.plan = b[:n:n], b[n:2*n:2*n], b[2*n:3*n:3*n]
	b = b[3*n:]
	for _, col := range []*[]uint16{&seg.page, &seg.ref, &seg.host} {
		c := make([]uint16, n)
		for i := range c {
			c[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		*col = c
		b = b[2*n:]
	}
	seg.distinct = vs
	seg.visitor = make([]uint64, n)
	for i := range seg.visitor {
		v := binary.LittleEndian.Uint32(b[4*i:])
		if int(v) >= len(vs) {
			return nil, errShort
		}
		seg.visitor[i] = vs[v]
	}
	b = b[4*n:]
	seg.priceAt, seg.price = make([]uint32, np), make([]float64, np)
	for k := range np {
		seg.priceAt[k] = binary.LittleEndian.Uint32(b[12*k:])
		seg.price[k] = math.Float64frombits(binary.LittleEndian.Uint64(b[12*k+4:]))
	}
	return seg, nil
}
