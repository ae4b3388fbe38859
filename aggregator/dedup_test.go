package aggregator

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"
)

func TestMurmur3(t *testing.T) {
	tests := []struct {
		in     string
		h1, h2 uint64
	}{
		{"", 0, 0},
		// Reference values of MurmurHash3_x64_128, seed 0.
		{"Hello world", 0xbd656d29d21ac009, 0x4ab5b5cd54eb2cb3},
		{"The quick brown fox jumps over the lazy dog", 0xe34bbc7bbc071b6c, 0x7a433ca9c49a9347},
	}
	for _, tt := range tests {
		h1, h2 := murmur3x64([]byte(tt.in), 0)
		if h1 != tt.h1 || h2 != tt.h2 {
			t.Errorf("murmur3(%q) = %016x %016x, want %016x %016x", tt.in, h1, h2, tt.h1, tt.h2)
		}
	}
	if keyOf("a", "bc") == keyOf("ab", "c") {
		t.Error("site/id boundary does not change the key")
	}
	long := string(make([]byte, 300))
	if keyOf(long, "x") == keyOf(long, "y") {
		t.Error("long keys collide")
	}
}

type rec struct {
	seq string
	rt  int64
	key dedupKey
}

// randomStream has many retries of few ids, receive times that jump back
// and forth (skewed ingest clocks) and gaps longer than the window.
func randomStream(r *rand.Rand, n int) []rec {
	out := make([]rec, n)
	rt := int64(1_764_000_000_000)
	for i := range out {
		switch x := r.IntN(1000); {
		case x < 5:
			rt += int64(r.IntN(15)) * 60_000 // long pause
		case x < 105:
			rt -= int64(r.IntN(30_000)) // skewed ingest node
		default:
			rt += int64(r.IntN(1000))
		}
		id := r.IntN(n / 4)
		out[i] = rec{seq: strconv.Itoa(i + 1), rt: rt, key: keyOf("s", strconv.Itoa(id))}
	}
	return out
}

// TestDedupRebuildIsExact processes a random stream in random batches,
// crashing at random points and rebuilding the state from the stored
// position as the aggregator does, and checks every decision against an
// uninterrupted run.
func TestDedupRebuildIsExact(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			window := 10 * time.Minute
			recs := randomStream(r, 5000)
			want := make([]bool, len(recs))
			ref := newDedup(window, 0)
			dups := 0
			for i, x := range recs {
				want[i] = ref.seen(x.seq, x.rt, x.key)
				if want[i] {
					dups++
				}
			}
			if dups == 0 || dups == len(recs) {
				t.Fatalf("stream has %d duplicates of %d: not a useful test", dups, len(recs))
			}

			var pos struct {
				next  int // index of the first record not applied
				from  string
				clock int64
			}
			d := newDedup(window, 0)
			crashes, expired := 0, 0
			for pos.next < len(recs) {
				n := 1 + r.IntN(300)
				end := min(pos.next+n, len(recs))
				for i := pos.next; i < end; i++ {
					if got := d.seen(recs[i].seq, recs[i].rt, recs[i].key); got != want[i] {
						t.Fatalf("record %d (after %d crashes): duplicate=%v, want %v", i, crashes, got, want[i])
					}
				}
				committed := r.IntN(4) != 0 // else crash before the commit: the batch is redone
				if committed {
					pos.next = end
					pos.from, pos.clock = d.position()
				}
				if !committed || r.IntN(3) == 0 {
					crashes++
					d = newDedup(window, pos.clock)
					from := len(recs) + 1 // nothing committed yet: nothing to re-feed
					if pos.from != "" {
						from, _ = strconv.Atoi(pos.from)
					}
					if from > 1 && from <= pos.next {
						expired++
					}
					for i := from - 1; i < pos.next; i++ {
						d.seen(recs[i].seq, recs[i].rt, recs[i].key)
					}
				}
			}
			if crashes == 0 || expired == 0 {
				t.Fatalf("%d crashes, %d with a partial rebuild: not a useful test", crashes, expired)
			}
		})
	}
}

func TestDedupWindow(t *testing.T) {
	const min = 60_000
	d := newDedup(10*time.Minute, 0)
	k := keyOf("s", "a")
	other := keyOf("s", "b")
	// Generations are 1m wide; at clock c the live ones are c/1m-9 .. c/1m.
	check := func(rt int64, key dedupKey, want bool) {
		t.Helper()
		if got := d.seen("1", rt, key); got != want {
			t.Errorf("seen at %dms = %v, want %v", rt, got, want)
		}
	}
	check(0, k, false)
	check(5*min, k, true)         // retry 5m later: within the window; touched in generation 5
	check(14*min+30_000, k, true) // generation 5 lives until the clock reaches generation 15
	check(23*min+30_000, other, false)
	check(23*min+30_000, k, true) // touched in generation 14, live until 23
	check(33*min, k, false)       // generation 23 left the window at 33
	check(10, k, true)            // an RT behind the clock counts at the clock
	check(10, other, false)       // other, last seen in generation 23, expired
	if d.entries() > 4 {
		t.Errorf("entries %d after expiry", d.entries())
	}
}

// BenchmarkDedup measures seen() with a window holding the keys of a
// steady 10,000 events/s (1 event per 0.1ms of RT), and reports the
// memory held per live key.
func BenchmarkDedup(b *testing.B) {
	keys := make([]dedupKey, 1<<20)
	for i := range keys {
		keys[i] = keyOf("site", "01JDX6T8Q5"+strconv.Itoa(i))
	}
	d := newDedup(10*time.Minute, 0)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		d.seen("1", int64(i)/10, keys[i&(len(keys)-1)])
	}
	b.StopTimer()

	// Memory: fill a fresh state with 2M distinct keys in one window and
	// compare the heap before and after.
	const n = 2_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d = newDedup(10*time.Minute, 0)
	for i := range n {
		d.seen("1", int64(i)/10, dedupKey{uint64(i) * 0x9e3779b97f4a7c15, uint64(i)})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/entry")
	runtime.KeepAlive(d)
}

// TestDedupMatchesModel compares every decision of the flat table with a
// plain map of each key's last generation, over a stream long enough to
// cycle the 255 generation tags several times and force rebuilds (growth,
// shrinking after pauses, stale tags coming round again).
func TestDedupMatchesModel(t *testing.T) {
	tests := []struct {
		name   string
		window time.Duration
		ids    int
		step   int // max RT advance per record, ms
	}{
		{"tags cycle, few keys", 10 * time.Millisecond, 50, 3},
		{"tags cycle, many keys", 100 * time.Millisecond, 5000, 2},
		{"growth", 10 * time.Minute, 200_000, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			d := newDedup(tt.window, 0)
			width := max(tt.window.Milliseconds()/generations, 1)
			last := map[dedupKey]int64{}
			clock := int64(0)
			for i := range 300_000 {
				rt := clock + int64(r.IntN(tt.step+1))
				if r.IntN(1000) == 0 {
					rt += 30 * tt.window.Milliseconds() // a pause: everything expires
				}
				if r.IntN(20) == 0 {
					rt -= int64(r.IntN(5 * int(width))) // an older receive time
				}
				key := keyOf("s", strconv.Itoa(r.IntN(tt.ids)))
				clock = max(clock, rt)
				g := floorDiv(clock, width)
				lg, ok := last[key]
				want := ok && lg > g-generations
				last[key] = g
				if got := d.seen(strconv.Itoa(i+1), rt, key); got != want {
					t.Fatalf("record %d: seen %v, want %v", i, got, want)
				}
				if i%9973 == 0 {
					n := 0
					for _, lg := range last {
						if lg > g-generations {
							n++
						}
					}
					if d.entries() != n {
						t.Fatalf("record %d: %d entries, want %d", i, d.entries(), n)
					}
				}
			}
		})
	}
}

// BenchmarkDedupSteady measures the memory of one shard's dedup state in
// the steady state of 10,000 events/s, each id new, over three windows
// (so generations expire, stale slots are reused and the table is rebuilt
// as in production): bytes/id is the heap held per live id at the end,
// peak-bytes/id the largest table, counting the old and the new table
// both held during a rebuild, per live id. The dedup set of a window W
// then costs 10,000 × W × bytes/id (docs/operations.md, web/README.md).
func BenchmarkDedupSteady(b *testing.B) {
	const (
		rate   = 10_000 // events/s
		window = time.Minute
		events = 3 * rate * 60
	)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		d := newDedup(window, 0)
		slots, peak := len(d.keys), 0
		for i := range events {
			d.seen("1", int64(i)*1000/rate, dedupKey{uint64(i) * 0x9e3779b97f4a7c15, uint64(i)})
			if n := len(d.keys); n != slots {
				peak = max(peak, (n+slots)*17) // both tables are live while rebuilding
				slots = n
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		live := float64(d.entries())
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/live, "bytes/id")
		b.ReportMetric(float64(peak)/live, "peak-bytes/id")
		b.ReportMetric(live, "live-ids")
		runtime.KeepAlive(d)
	}
}
