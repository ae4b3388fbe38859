package aggregator

import "time"

// generations is how many slices the dedup window is cut into. More slices
// make the effective window tighter (between W-W/G and W) at the cost of
// more map lookups per event.
const generations = 10

// dedup is the generational set of recently seen event keys of one shard.
// Its decisions are a pure function of the record sequence: its clock is the
// highest receive time (RT) seen, never the wall clock, and every key is
// (re)inserted into the current generation on every sighting. Re-feeding
// the records from the first record of the oldest live generation, starting
// from the clock value just before it, therefore rebuilds the exact same
// state (see metric.Position).
//
// It is kept as one index from key to the generation it was last seen in,
// plus each generation's list of keys, so a lookup is one map access instead
// of one per generation; dropping a generation deletes the keys whose last
// sighting it holds. A key is live exactly when its last sighting is in a
// live generation, as with one set per generation. Not safe for concurrent use.
type dedup struct {
	width int64 // generation width, ms
	clock int64 // max RT seen, ms
	index map[dedupKey]int64
	live  []*generation
}

type generation struct {
	id          int64  // clock / width
	firstSeq    string // sequence number of the record that opened it
	clockBefore int64  // dedup clock just before that record
	keys        []dedupKey
}

func newDedup(window time.Duration, clock int64) *dedup {
	w := window.Milliseconds() / generations
	if w < 1 {
		w = 1
	}
	return &dedup{width: w, clock: clock, index: map[dedupKey]int64{}}
}

// seen records key as seen at record seq with receive time rt and reports
// whether it was already seen within the window.
func (d *dedup) seen(seq string, rt int64, key dedupKey) bool {
	before := d.clock
	if rt > d.clock {
		d.clock = rt
	}
	g := floorDiv(d.clock, d.width)
	drop := 0
	for drop < len(d.live) && d.live[drop].id <= g-generations {
		old := d.live[drop]
		for _, k := range old.keys {
			if d.index[k] == old.id {
				delete(d.index, k)
			}
		}
		drop++
	}
	if drop > 0 {
		n := copy(d.live, d.live[drop:])
		clear(d.live[n:])
		d.live = d.live[:n]
	}
	var cur *generation
	if n := len(d.live); n > 0 && d.live[n-1].id == g {
		cur = d.live[n-1]
	} else {
		hint := 64
		if n > 0 {
			// The previous generation's size is the best guess of this
			// one's; sizing up front avoids copying as it fills.
			hint = len(d.live[n-1].keys) + len(d.live[n-1].keys)/8
		}
		cur = &generation{id: g, firstSeq: seq, clockBefore: before, keys: make([]dedupKey, 0, hint)}
		d.live = append(d.live, cur)
	}
	last, dup := d.index[key]
	if !dup || last != g {
		d.index[key] = g
		cur.keys = append(cur.keys, key)
	}
	return dup
}

// entries is the number of distinct keys in the window.
func (d *dedup) entries() int { return len(d.index) }

// position returns where a rebuild of the current state starts: the first
// record of the oldest live generation and the clock just before it.
func (d *dedup) position() (from string, clock int64) {
	if len(d.live) == 0 {
		return "", d.clock
	}
	return d.live[0].firstSeq, d.live[0].clockBefore
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
