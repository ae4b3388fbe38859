package redisagg

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
)

// Bounds documented in docs/redis-keys.md ("Memory per site-day"):
// MEMORY USAGE of one bucket hash, and of one top-K set, whose dimension is
// at its cap (256 cut values filling MaxDimBytes, or 1,000 short ones
// within it: the most fields, so the most memory; the metric's other
// dimensions normal).
const (
	maxHashBytesAtCap = 128 << 10
	maxZsetBytesAtCap = 176 << 10
	// maxDeltaLogBytes bounds one (site, metric)'s delta log: about
	// DeltaHistory (approximate trimming keeps up to about 100 more)
	// entries of at most MaxDeltaEntryBytes.
	maxDeltaLogBytes = 2100 * (MaxDeltaEntryBytes + 256)
)

// TestSiteDayMemory measures on a real redis-server what one day of a site
// costs: a normal site (100 paths of about 30 bytes, 20 referrers, the
// built-in metrics, 100,000 pageviews and 10,000 clicks spread over the
// day) and a hostile one (every bucket of the day filled with distinct
// 2 KB paths, cut to 256 bytes, until the caps). The day's buckets are
// what stays of the last 24 hours: 6 h of 10s buckets (their retention),
// 24 h of 1m buckets, 24 1h and one or two 1d buckets. It prints MEMORY
// USAGE per kind and step and INFO used_memory, and asserts the per-bucket
// bounds. Run: go test -count=1 -run TestSiteDayMemory -v ./redisagg/
func TestSiteDayMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("applies a day of buckets")
	}
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	cat := catalog(t)
	now := time.Now()
	for _, tc := range []struct {
		name string
		day  func(cat *metric.Catalog, now time.Time) []*metric.Update
	}{
		{name: "normal", day: normalDay},
		// 300 distinct 2 KB paths per bucket: MaxDimBytes lets in 256.
		{name: "hostile", day: func(cat *metric.Catalog, now time.Time) []*metric.Update {
			return hostileDay(cat, now, "hostile", 300, 2048)
		}},
		// 1,100 distinct 65-byte paths per bucket: MaxDimValues lets in
		// 1,000 (65,000 bytes, within MaxDimBytes): the most fields.
		{name: "hostile-many", day: func(cat *metric.Catalog, now time.Time) []*metric.Update {
			return hostileDay(cat, now, "hostile-many", 1100, 65)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := rdb.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			before := usedMemory(t, rdb)
			// The delta log is bounded per (site, metric), not per day:
			// TestDeltaLogMemory measures it.
			st := New(rdb, cat, Config{Now: func() time.Time { return now }, NoDeltas: true})
			for i, u := range tc.day(cat, now) {
				s := strconv.Itoa(i + 1)
				if err := st.Apply(ctx, commit(s, s, 0, u)); err != nil {
					t.Fatal(err)
				}
			}
			after := usedMemory(t, rdb)
			groups, largest := measureSite(t, rdb, st.keys, tc.name)
			if largest.hash == 0 {
				t.Fatal("no bucket hash measured")
			}
			var total int64
			for _, g := range groups {
				total += g.bytes
				t.Logf("%s: %-22s %6d keys %10d bytes (largest %d)", tc.name, g.name, g.keys, g.bytes, g.largest)
			}
			t.Logf("%s: MEMORY USAGE total %d bytes (%.1f MB); INFO used_memory grew %d bytes (%.1f MB); overflowed %d",
				tc.name, total, float64(total)/1e6, after-before, float64(after-before)/1e6, st.Stats().Overflowed)
			if largest.hash > maxHashBytesAtCap || largest.zset > maxZsetBytesAtCap {
				t.Errorf("largest bucket hash %d bytes, top-K set %d bytes: above the documented %d and %d",
					largest.hash, largest.zset, maxHashBytesAtCap, maxZsetBytesAtCap)
			}
		})
	}
}

type memGroup struct {
	name           string
	keys           int
	bytes, largest int64
}

type largestKeys struct{ hash, zset int64 }

// measureSite sums MEMORY USAGE (SAMPLES 0: exact) over the keys of site,
// grouped by kind and step.
func measureSite(t *testing.T, rdb *redis.Client, k Keys, site string) ([]memGroup, largestKeys) {
	t.Helper()
	ctx := context.Background()
	by := map[string]*memGroup{}
	var big largestKeys
	iter := rdb.Scan(ctx, 0, k.SitePattern(site), 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		n, err := rdb.MemoryUsage(ctx, key, 0).Result()
		if err != nil {
			t.Fatalf("memory usage %s: %v", key, err)
		}
		name := "other (ck, dseq, dlog)"
		for kind, label := range map[string]string{kindCount: "count hash", kindTop: "top-K set", kindUnique: "HLL"} {
			if _, _, step, _, ok := k.parseBucket(key, kind); ok {
				name = label + " " + step
				switch kind {
				case kindCount:
					big.hash = max(big.hash, n)
				case kindTop:
					big.zset = max(big.zset, n)
				}
			}
		}
		g := by[name]
		if g == nil {
			g = &memGroup{name: name}
			by[name] = g
		}
		g.keys++
		g.bytes += n
		g.largest = max(g.largest, n)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	out := make([]memGroup, 0, len(by))
	for _, g := range by {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b memGroup) int { return cmp.Compare(a.name, b.name) })
	return out, big
}

func usedMemory(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("INFO memory has no used_memory")
	return 0
}

// normalDay is a day of a normal site "normal", one commit per hour: 100
// paths of about 30 bytes (a few popular, most rare), 20 referrers, three
// devices, 10 click targets, 20,000 visitors.
func normalDay(cat *metric.Catalog, now time.Time) []*metric.Update {
	rng := rand.New(rand.NewPCG(7, 11))
	zipf := func(n int) int { return int(float64(n) * rng.Float64() * rng.Float64()) }
	paths := make([]string, 100)
	for i := range paths {
		paths[i] = fmt.Sprintf("/blog/2026/an-article-name-%03d", i)
	}
	refs := make([]string, 20)
	for i := range refs {
		refs[i] = fmt.Sprintf("referrer-%02d.example.com", i)
	}
	refs[0] = metric.None
	devices := []string{"desktop", "mobile", "tablet"}
	hours := make([]*adder, 24)
	for i := range hours {
		hours[i] = newAdder(cat)
	}
	start := now.Add(-24 * time.Hour).UnixMilli()
	event := func(typ string) (*adder, int64, string) {
		off := rng.Int64N(24 * 3600_000)
		return hours[off/3600_000], start + off, "u" + strconv.Itoa(rng.IntN(20000))
	}
	for range 100_000 {
		a, ts, uid := event("pageview")
		p := paths[zipf(len(paths))]
		a.count("normal", "events", ts, 1, "type", "pageview")
		a.count("normal", "pageviews", ts, 1, "path", p, "referrer", refs[zipf(len(refs))], "device", devices[zipf(3)])
		a.unique("normal", "visitors", ts, uid)
	}
	for range 10_000 {
		a, ts, uid := event("click")
		a.count("normal", "events", ts, 1, "type", "click")
		a.count("normal", "clicks", ts, 1, "path", paths[zipf(len(paths))], "target", "button-"+strconv.Itoa(zipf(10)))
		a.unique("normal", "visitors", ts, uid)
	}
	out := make([]*metric.Update, len(hours))
	for i, a := range hours {
		out[i] = a.u
	}
	return out
}

// hostileDay is a day of site whose every bucket of pageviews (each step,
// the whole day) receives n distinct paths of size bytes (cut as the
// aggregator cuts them), one commit per hour of buckets. The same n values
// serve every bucket: a bucket's cost depends only on what it holds.
func hostileDay(cat *metric.Catalog, now time.Time, site string, n, size int) []*metric.Update {
	vals := make([]string, n)
	for i := range vals {
		vals[i] = metric.CutValue(fmt.Sprintf("/%06d", i) + strings.Repeat("a", size-7))
	}
	end := now.UnixMilli()
	start := end - 24*3600_000
	var out []*metric.Update
	for h := start; h < end; h += 3600_000 {
		u := metric.NewUpdate()
		for _, st := range cat.Steps {
			w := st.Width.Milliseconds()
			for b := st.Bucket(h); b < min(h+3600_000, end); b += w {
				if b < st.Bucket(h) || (w > 3600_000 && h != start) {
					continue
				}
				u.Counts[metric.CountKey{Site: site, Metric: "pageviews", Step: st.Name, Bucket: b}] += int64(len(vals))
				for _, v := range vals {
					u.Counts[metric.CountKey{Site: site, Metric: "pageviews", Step: st.Name, Bucket: b, Dim: "path", Value: v}]++
				}
			}
		}
		out = append(out, u)
	}
	return out
}

// TestDeltaLogMemory fills the delta log of one (site, metric) past
// DeltaHistory with entries of the longest labels (256-byte values) and
// prints its MEMORY USAGE: the bound per (site, metric), whatever the
// traffic. Run: go test -count=1 -run TestDeltaLogMemory -v ./redisagg/
func TestDeltaLogMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a full delta log")
	}
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	cat := catalog(t)
	now := time.Now()
	st := New(rdb, cat, Config{Now: func() time.Time { return now }})
	vals := make([]string, 250)
	for i := range vals {
		vals[i] = metric.CutValue(fmt.Sprintf("/%06d", i) + strings.Repeat("a", 2041))
	}
	key := st.DeltaLogKey("hostile", "pageviews")
	for i := 1; ; i++ {
		a := newAdder(cat)
		for _, v := range vals {
			a.count("hostile", "pageviews", now.UnixMilli(), 1, "path", v)
		}
		s := strconv.Itoa(i)
		if err := st.Apply(ctx, commit(s, s, 0, a.u)); err != nil {
			t.Fatal(err)
		}
		if n, err := rdb.Get(ctx, st.keys.deltaSeq("hostile", "pageviews")).Int64(); err != nil || n > 2200 {
			break
		}
	}
	n, err := rdb.MemoryUsage(ctx, key, 0).Result()
	if err != nil {
		t.Fatal(err)
	}
	xs, err := rdb.XRange(ctx, key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var largest int
	for _, x := range xs {
		largest = max(largest, len(x.Values["d"].(string)))
	}
	t.Logf("delta log: %d entries, largest %d bytes, MEMORY USAGE %d bytes (%.1f MB)", len(xs), largest, n, float64(n)/1e6)
	if largest > MaxDeltaEntryBytes {
		t.Errorf("largest entry %d bytes, above %d", largest, MaxDeltaEntryBytes)
	}
	if bound := int64(maxDeltaLogBytes); n > bound {
		t.Errorf("delta log holds %d bytes, above the documented %d", n, bound)
	}
}
