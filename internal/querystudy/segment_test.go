package querystudy

import (
	"strings"

	"github.com/pulsehq/pulse/event"
)

// segment is one hour of one site's applied events, decoded into columns
// with a dictionary per string column: what a query node caches for B and
// C, and what every query scans. Filters are evaluated once per dictionary
// entry, then the scan compares small integers.
type segment struct {
	start   int64    // hour start, ms
	ts      []uint32 // ms after start
	goal    []uint8
	device  []uint8
	plan    []uint8 // index into plans+1; 0 = no plan prop
	page    []uint16
	ref     []uint16
	host    []uint16
	visitor []uint64
	priceAt []uint32 // rows that carry props.price, ascending
	// distinct is the hour's distinct visitors (compacted hours store them
	// as the visitor dictionary): an unfiltered union reads these, not
	// every row.
	distinct []uint64
	price    []float64

	goals, devices, plans, pages, refs, hosts dict
}

// dict maps a column's strings to small ids and back.
type dict struct {
	ids    map[string]int
	values []string
}

func (d *dict) id(s string) int {
	if i, ok := d.ids[s]; ok {
		return i
	}
	if d.ids == nil {
		d.ids = map[string]int{}
	}
	d.ids[s] = len(d.values)
	d.values = append(d.values, s)
	return len(d.values) - 1
}

func newSegment(start int64) *segment {
	s := &segment{start: start}
	s.plans.id("") // id 0: no plan
	return s
}

func (s *segment) add(ev *event.Event) {
	plan, _ := ev.Props["plan"].(string)
	price, hasPrice := ev.Props["price"].(float64)
	s.addFields(ev.TS, ev.Type, ev.Device, plan, ev.Path, ev.RefHost, hostOf(ev.URL), visitorHash(ev.UID), price, hasPrice)
}

func (s *segment) addFields(ts int64, goal, device, plan, page, ref, host string, visitor uint64, price float64, hasPrice bool) {
	n := uint32(len(s.ts))
	s.ts = append(s.ts, uint32(ts-s.start))
	s.goal = append(s.goal, uint8(s.goals.id(goal)))
	s.device = append(s.device, uint8(s.devices.id(device)))
	s.plan = append(s.plan, uint8(s.plans.id(plan)))
	s.page = append(s.page, uint16(s.pages.id(page)))
	s.ref = append(s.ref, uint16(s.refs.id(ref)))
	s.host = append(s.host, uint16(s.hosts.id(host)))
	s.visitor = append(s.visitor, visitor)
	if hasPrice {
		s.priceAt = append(s.priceAt, n)
		s.price = append(s.price, price)
	}
}

func hostOf(url string) string {
	rest, ok := strings.CutPrefix(url, "https://")
	if !ok {
		return ""
	}
	h, _, _ := strings.Cut(rest, "/")
	return h
}

func (s *segment) rows() int { return len(s.ts) }

// distinctVisitors returns (and keeps) the hour's distinct visitors.
func (s *segment) distinctVisitors() []uint64 {
	if s.distinct == nil {
		seen := make(map[uint64]struct{}, 1024)
		for _, v := range s.visitor {
			if _, ok := seen[v]; !ok {
				seen[v] = struct{}{}
				s.distinct = append(s.distinct, v)
			}
		}
	}
	return s.distinct
}

// bytes is the segment's memory: columns and dictionaries (strings and
// map entries, estimated at 48 bytes per map entry).
func (s *segment) bytes() int {
	n := len(s.ts)*4 + len(s.goal) + len(s.device) + len(s.plan) + 2*(len(s.page)+len(s.ref)+len(s.host)) +
		8*len(s.visitor) + 8*len(s.distinct) + 4*len(s.priceAt) + 8*len(s.price) + 200
	for _, d := range []*dict{&s.goals, &s.devices, &s.plans, &s.pages, &s.refs, &s.hosts} {
		for _, v := range d.values {
			n += 16 + len(v) + 48
		}
	}
	return n
}

// hours groups time-sorted events into hourly segments by ts, keeping the
// first of each id (the aggregator's dedup): the applied events.
func hours(evs []event.Event, seen map[string]bool, into map[int64]*segment) {
	for i := range evs {
		ev := &evs[i]
		if seen != nil {
			if seen[ev.ID] {
				continue
			}
			seen[ev.ID] = true
		}
		h := ev.TS - ev.TS%3_600_000
		s := into[h]
		if s == nil {
			s = newSegment(h)
			into[h] = s
		}
		s.add(ev)
	}
}
