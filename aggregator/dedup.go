package aggregator

import (
	"math/bits"
	"time"
)

// generations is how many slices the dedup window is cut into. More slices
// make the effective window tighter (between W-W/G and W) at the cost of
// more frequent table rebuilds.
const generations = 10

// dedup is the generational set of recently seen event keys of one shard.
// Its decisions are a pure function of the record sequence: its clock is the
// highest receive time (RT) seen, never the wall clock, and every key is
// (re)inserted into the current generation on every sighting. Re-feeding
// the records from the first record of the oldest live generation, starting
// from the clock value just before it, therefore rebuilds the exact same
// state (see metric.Position).
//
// It is one flat open-addressing table (linear probing, any size: a slot
// is picked by multiplying the hash by the size, not by masking) of 16-byte keys
// plus one tag byte per slot naming the generation of the key's last
// sighting (0: empty). A key is live exactly when its tag names a live
// generation, as with one set per generation. Dropping a generation costs
// nothing: its slots become stale, are reused by inserts on their probe
// path, and are cleared by the next rebuild. A rebuild (re-inserting the
// live keys into a table sized for them) happens when used slots pass
// maxLoad, or before a tag is given to a new generation while stale slots
// still carry it (tags cycle through 255 values). That is 17 bytes a slot,
// 21 to 28 bytes a live key (load 0.6 to 0.8), instead of a Go map and
// per-generation key lists (78 bytes a key). Not safe for concurrent use.
type dedup struct {
	width int64 // generation width, ms
	clock int64 // max RT seen, ms
	live  []*generation

	keys   []dedupKey
	tags   []uint8
	shift  uint      // 64 - log2(len(keys))
	used   int       // slots with a non-zero tag, live or stale
	count  [256]int  // slots per tag
	isLive [256]bool // tags of the live generations
	nlive  int       // live keys: sum of count over live tags

	// inherited are the final states of the parent shards (after a
	// reshard), each with its own inherited ones: a key live there counts
	// as seen while the record's RT is within a window of that shard's
	// clock. They are consulted, never
	// changed, and are rebuilt from the parents' stored positions for every
	// session of the child, so decisions stay a pure function of the
	// records.
	inherited []*dedup
}

type generation struct {
	id          int64  // clock / width
	tag         uint8  // tag of its keys in the table
	firstSeq    string // sequence number of the record that opened it
	clockBefore int64  // dedup clock just before that record
}

// Table sizing: a rebuild sizes the table so that the live keys fill about
// targetLoad of it; used slots (live and stale) may reach maxLoad.
const (
	minSlots   = 1 << 10
	targetLoad = 0.6
	maxLoad    = 0.8
)

func newDedup(window time.Duration, clock int64) *dedup {
	w := window.Milliseconds() / generations
	if w < 1 {
		w = 1
	}
	d := &dedup{width: w, clock: clock}
	d.resize(minSlots)
	return d
}

// tagOf maps a generation id to its tag, 1..255: live generations (at most
// generations consecutive ids) never share one.
func tagOf(id int64) uint8 {
	m := id % 255
	if m < 0 {
		m += 255
	}
	return uint8(m) + 1
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
		t := d.live[drop].tag
		d.isLive[t] = false
		d.nlive -= d.count[t]
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
		cur = &generation{id: g, tag: tagOf(g), firstSeq: seq, clockBefore: before}
		if d.count[cur.tag] > 0 {
			// Stale slots from 255 generations ago carry this tag.
			d.rebuild(d.nlive)
		}
		d.isLive[cur.tag] = true
		d.live = append(d.live, cur)
	}
	if d.insert(key, cur.tag) {
		return true
	}
	return d.seenInherited(key, rt)
}

// seenInherited reports whether key is live in an ancestor's final state
// (parents, then theirs) whose window still covers receive time rt.
func (d *dedup) seenInherited(key dedupKey, rt int64) bool {
	for _, p := range d.inherited {
		if rt-p.clock < p.width*generations && p.has(key) || p.seenInherited(key, rt) {
			return true
		}
	}
	return false
}

// has reports whether key is live, without recording a sighting.
func (d *dedup) has(key dedupKey) bool {
	i := d.slot(key)
	for {
		t := d.tags[i]
		if t == 0 {
			return false
		}
		if d.keys[i] == key {
			return d.isLive[t]
		}
		if i++; i == len(d.tags) {
			i = 0
		}
	}
}

// insert sets key's tag to tag and reports whether key was live before.
func (d *dedup) insert(key dedupKey, tag uint8) bool {
	i := d.slot(key)
	reuse := -1 // first stale slot on the probe path
	for {
		t := d.tags[i]
		if t == 0 {
			break
		}
		if d.keys[i] == key {
			if d.isLive[t] {
				if t != tag {
					d.count[t]--
					d.count[tag]++
				}
				d.tags[i] = tag
				return true
			}
			// Its last sighting left the window: a new key, in place.
			d.count[t]--
			d.count[tag]++
			d.nlive++
			d.tags[i] = tag
			return false
		}
		if reuse < 0 && !d.isLive[t] {
			reuse = i
		}
		if i++; i == len(d.tags) {
			i = 0
		}
	}
	// Not in the table. A stale slot before the empty one may take it: the
	// key cannot be further on, as the probe ended at an empty slot.
	if reuse >= 0 {
		d.count[d.tags[reuse]]--
		i = reuse
	} else {
		d.used++
	}
	d.keys[i], d.tags[i] = key, tag
	d.count[tag]++
	d.nlive++
	if float64(d.used) > maxLoad*float64(len(d.keys)) {
		d.rebuild(d.nlive)
	}
	return false
}

// rebuild re-inserts the live keys into a table sized for live keys.
func (d *dedup) rebuild(live int) {
	keys, tags := d.keys, d.tags
	d.resize(max(minSlots, int(float64(live)/targetLoad)))
	for i, t := range tags {
		if t != 0 && d.isLive[t] {
			d.place(keys[i], t)
		}
	}
}

// resize replaces the table with an empty one of size slots.
func (d *dedup) resize(size int) {
	d.keys = make([]dedupKey, size)
	d.tags = make([]uint8, size)
	d.used = 0
	d.count = [256]int{}
}

// place puts a key known to be absent into the table without checks.
func (d *dedup) place(key dedupKey, tag uint8) {
	i := d.slot(key)
	for d.tags[i] != 0 {
		if i++; i == len(d.tags) {
			i = 0
		}
	}
	d.keys[i], d.tags[i] = key, tag
	d.count[tag]++
	d.used++
}

// slot is where key's probe starts: its hash scaled to the table size.
// Keys are MurmurHash3 outputs, uniform already.
func (d *dedup) slot(key dedupKey) int {
	hi, _ := bits.Mul64(key[0], uint64(len(d.tags)))
	return int(hi)
}

// entries is the number of distinct keys in the window.
func (d *dedup) entries() int { return d.nlive }

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
