package querystudy

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// studyDays is the range every query benchmark loads: 30 days.
const studyDays = 30

// truth builds the applied events of days [0, days) of s as hourly
// segments: the ground truth every design's answers are compared with.
func truth(s shape, days int) map[int64]*segment {
	segs := map[int64]*segment{}
	for d := range days {
		hours(genDay(1, s, d), map[string]bool{}, segs)
	}
	return segs
}

func dayKey(kind string, ms int64) string { return "qs:" + kind + ":" + strconv.FormatInt(ms, 10) }

// loadA writes what design A keeps for the queries: per-bucket HLLs of
// visitors (1d, 1h, 1m), pageview totals per day, pageviews by page per
// minute, and the declared tuples at 1d: (page, referrer), (goal, plan),
// sum of price by page.
func loadA(tb testing.TB, rdb *redis.Client, segs map[int64]*segment) {
	ctx := context.Background()
	pipe := rdb.Pipeline()
	for _, s := range segs {
		day := s.start - s.start%86_400_000
		hv := make([]any, 0, len(s.visitor))
		for _, v := range s.visitor {
			hv = append(hv, v)
		}
		pipe.PFAdd(ctx, dayKey("u:1h", s.start), hv...)
		pipe.PFAdd(ctx, dayKey("u:1d", day), hv...)
		for i := range s.ts {
			at := s.start + int64(s.ts[i])
			goal := s.goals.values[s.goal[i]]
			page := s.pages.values[s.page[i]]
			if goal == "pageview" {
				pipe.HIncrBy(ctx, dayKey("c:pv:1d", day), "_", 1)
				pipe.HIncrBy(ctx, dayKey("t:pv:page+ref:1d", day), page+"\x1f"+s.refs.values[s.ref[i]], 1)
				pipe.HIncrBy(ctx, dayKey("c:pv:page:1m", at-at%60_000), page, 1)
			}
			pipe.HIncrBy(ctx, dayKey("t:ev:goal+plan:1d", day), goal+"\x1f"+s.plans.values[s.plan[i]], 1)
			pipe.PFAdd(ctx, dayKey("u:1m", at-at%60_000), s.visitor[i])
		}
		for k, i := range s.priceAt {
			pipe.HIncrByFloat(ctx, dayKey("s:price:page:1d", day), s.pages.values[s.page[i]], s.price[k])
		}
		if pipe.Len() > 20_000 {
			if _, err := pipe.Exec(ctx); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		tb.Fatal(err)
	}
}

func keysEvery(kind string, from, to, step int64) []string {
	var ks []string
	for t := from; t < to; t += step {
		ks = append(ks, dayKey(kind, t))
	}
	return ks
}

func hgetalls(tb testing.TB, rdb *redis.Client, keys []string) []map[string]string {
	ctx := context.Background()
	pipe := rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		tb.Fatal(err)
	}
	out := make([]map[string]string, len(keys))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out
}

// queryA answers Q1-Q5 from A's keys. Q2's and Q3's filters are read
// from the tuple fields; none of them can filter visitors.
func queryA(tb testing.TB, rdb *redis.Client, q string, from, to int64) any {
	ctx := context.Background()
	const day = 86_400_000
	switch q {
	case "Q1":
		v, err := rdb.PFCount(ctx, keysEvery("u:1d", from, to, day)...).Result()
		if err != nil {
			tb.Fatal(err)
		}
		pv := 0
		for _, h := range hgetalls(tb, rdb, keysEvery("c:pv:1d", from, to, day)) {
			n, _ := strconv.Atoi(h["_"])
			pv += n
		}
		return [2]int{int(v), pv}
	case "Q1-720h":
		v, err := rdb.PFCount(ctx, keysEvery("u:1h", from, to, 3_600_000)...).Result()
		if err != nil {
			tb.Fatal(err)
		}
		return int(v)
	case "Q2":
		out := map[string]int{}
		for _, h := range hgetalls(tb, rdb, keysEvery("t:pv:page+ref:1d", to-7*day, to, day)) {
			for f, v := range h {
				page, ref, _ := strings.Cut(f, "\x1f")
				if strings.Contains(ref, "google") {
					n, _ := strconv.Atoi(v)
					out[page] += n
				}
			}
		}
		return out
	case "Q3":
		out := map[[2]int64]int{}
		for i, h := range hgetalls(tb, rdb, keysEvery("t:ev:goal+plan:1d", from, to, day)) {
			for f, v := range h {
				goal, plan, _ := strings.Cut(f, "\x1f")
				if plan == "pro" {
					n, _ := strconv.Atoi(v)
					out[[2]int64{goalIndex(goal), from + int64(i)*day}] += n
				}
			}
		}
		return out
	case "Q4":
		v, err := rdb.PFCount(ctx, keysEvery("u:1m", to-5*60_000, to, 60_000)...).Result()
		if err != nil {
			tb.Fatal(err)
		}
		out := map[string]int{}
		for _, h := range hgetalls(tb, rdb, keysEvery("c:pv:page:1m", to-30*60_000, to, 60_000)) {
			for f, s := range h {
				n, _ := strconv.Atoi(s)
				out[f] += n
			}
		}
		return [2]any{int(v), out}
	case "Q5":
		out := map[string]float64{}
		for _, h := range hgetalls(tb, rdb, keysEvery("s:price:page:1d", from, to, day)) {
			for f, s := range h {
				n, _ := strconv.ParseFloat(s, 64)
				out[f] += n
			}
		}
		return out
	}
	tb.Fatalf("unknown query %s", q)
	return nil
}

// loadB writes B's strings: every hour compacted (closed), except the
// last two, which stay as the plain rows the apply appended (live).
func loadB(tb testing.TB, rdb *redis.Client, segs map[int64]*segment, liveFrom int64) {
	ctx := context.Background()
	pipe := rdb.Pipeline()
	for h, s := range segs {
		if h >= liveFrom {
			var blob []byte
			for i := range s.ts {
				blob = appendSegmentRow(blob, s, i)
			}
			pipe.Set(ctx, dayKey("f:plain", h), blob, 0)
			continue
		}
		pipe.Set(ctx, dayKey("f:compact", h), compact(s), 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		tb.Fatal(err)
	}
}

// fetchB reads the hours [from, to) of B from Redis and decodes them; with
// cache, closed hours come from it (filled on the first miss) and only the
// live hours are read.
func fetchB(tb testing.TB, rdb *redis.Client, from, to, liveFrom int64, cache map[int64]*segment) []*segment {
	ctx := context.Background()
	pipe := rdb.Pipeline()
	type get struct {
		h    int64
		live bool
		cmd  *redis.StringCmd
	}
	var gets []get
	var out []*segment
	for h := from; h < to; h += 3_600_000 {
		live := h >= liveFrom
		if !live && cache != nil && cache[h] != nil {
			out = append(out, cache[h])
			continue
		}
		kind := "f:compact"
		if live {
			kind = "f:plain"
		}
		gets = append(gets, get{h, live, pipe.Get(ctx, dayKey(kind, h))})
	}
	if len(gets) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			tb.Fatal(err)
		}
	}
	for _, g := range gets {
		blob, err := g.cmd.Bytes()
		if err == redis.Nil {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		var seg *segment
		if g.live {
			seg = newSegment(g.h)
			err = decodePlain(blob, seg)
		} else {
			seg, err = decodeCompact(blob)
		}
		if err != nil {
			tb.Fatal(err)
		}
		if cache != nil && !g.live {
			cache[g.h] = seg
		}
		out = append(out, seg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out
}

// runQuery answers query q over decoded segments (B, C, and the truth).
func runQuery(q string, fetch func(from, to int64) []*segment, from, to int64) any {
	switch q {
	case "Q1":
		v, pv := q1(fetch(from, to))
		return [2]int{v, pv}
	case "Q2":
		return q2(fetch(to-7*86_400_000, to))
	case "Q3":
		return q3(fetch(from, to))
	case "Q4":
		v, m := q4(fetch(to-3_600_000, to), to)
		return [2]any{v, m}
	case "Q5":
		return q5(fetch(from, to))
	case "visits-7d":
		return visits(fetch(to-7*86_400_000, to))
	}
	return nil
}

// BenchmarkQueryRedis times Q1-Q5 over 30 days of the normal site on
// redis-server for A (aggregates) and B (fact rows: cold = every hour read
// and decoded, warm = closed hours from the query node's decoded cache).
// Run: go test -run '^$' -bench BenchmarkQueryRedis ./internal/querystudy
func BenchmarkQueryRedis(b *testing.B) {
	if testing.Short() {
		b.Skip("heavy: 30 days of a site in redis-server")
	}
	site, days := studySite(b)
	segs := truth(site, days)
	rdb := redistest.Start(b).Client(b)
	from := studyStart.UnixMilli()
	to := from + int64(days)*86_400_000
	liveFrom := to - 2*3_600_000
	aDesigns := []string{"Q1", "Q1-720h", "Q2", "Q3", "Q4", "Q5"}
	if site.name == "normal" {
		loadA(b, rdb, segs)
	} else {
		aDesigns = nil // A's loading is per row: too slow for the big site here
	}
	loadB(b, rdb, segs, liveFrom)
	_, aBytes := keyBytes(b, rdb, "qs:[uct]:*")
	_, bBytes := keyBytes(b, rdb, "qs:f:*")
	b.Logf("%d days of the %s site in Redis: A (HLLs 1d+1h+1m, totals, tuples at 1d) %.1f MB, B (compacted hours) %.1f MB",
		days, site.name, float64(aBytes)/1e6, float64(bBytes)/1e6)
	truthFetch := func(f, t int64) []*segment { return scanRange(segs, f, t) }
	for _, q := range aDesigns {
		b.Run("A/"+q, func(b *testing.B) {
			var got any
			for range b.N {
				got = queryA(b, rdb, q, from, to)
			}
			reportError(b, q, got, runQuery(strings.TrimSuffix(q, "-720h"), truthFetch, from, to))
		})
	}
	for _, mode := range []string{"cold", "warm"} {
		cache := map[int64]*segment{}
		for _, q := range []string{"Q1", "Q2", "Q3", "Q4", "Q5", "visits-7d"} {
			b.Run("B-"+mode+"/"+q, func(b *testing.B) {
				fetch := func(f, t int64) []*segment {
					if mode == "cold" {
						return fetchB(b, rdb, f, t, liveFrom, nil)
					}
					return fetchB(b, rdb, f, t, liveFrom, cache)
				}
				if mode == "warm" {
					runQuery(q, fetch, from, to) // fill the cache
				}
				b.ResetTimer()
				var got any
				for range b.N {
					got = runQuery(q, fetch, from, to)
				}
				reportError(b, q, got, runQuery(q, truthFetch, from, to))
			})
		}
		if mode == "warm" {
			n := 0
			for _, s := range cache {
				n += s.bytes()
			}
			b.Logf("B warm cache: %d hours, %.1f MB (%.2f MB per site-day)", len(cache), float64(n)/1e6, float64(n)/1e6/float64(days))
		}
	}
}

// studySite is the normal site over 30 days, or what
// PULSE_QUERYSTUDY_SITE=big and PULSE_QUERYSTUDY_DAYS=N ask for (the big
// site's 30 days do not fit this machine's time budget).
func studySite(b *testing.B) (shape, int) {
	site, days := normalSite(), studyDays
	if os.Getenv("PULSE_QUERYSTUDY_SITE") == "big" {
		site = bigSite()
	}
	if n, err := strconv.Atoi(os.Getenv("PULSE_QUERYSTUDY_DAYS")); err == nil && n > 0 {
		days = n
	}
	return site, days
}

// reportError reports the relative error of a visitors count (the only
// approximate answer) and fails on any other difference from the truth.
func reportError(b *testing.B, q string, got, want any) {
	if q == "visits-7d" {
		if got != want {
			b.Errorf("%s: %v, want %v", q, got, want)
		}
		return
	}
	switch g := got.(type) {
	case [2]int:
		w := want.([2]int)
		b.ReportMetric(100*math.Abs(float64(g[0]-w[0]))/float64(w[0]), "visitors-err-%")
		if g[1] != w[1] {
			b.Errorf("%s pageviews %d, want %d", q, g[1], w[1])
		}
	case int:
		w := want.([2]int)[0]
		b.ReportMetric(100*math.Abs(float64(g-w))/float64(w), "visitors-err-%")
	case [2]any:
		w := want.([2]any)
		b.ReportMetric(100*math.Abs(float64(g[0].(int)-w[0].(int)))/float64(w[0].(int)), "visitors-err-%")
		if fmt.Sprint(g[1]) != fmt.Sprint(w[1]) {
			b.Errorf("%s pages differ", q)
		}
	case map[string]float64:
		w := want.(map[string]float64)
		for k, v := range w {
			if math.Abs(g[k]-v) > 1e-6*math.Max(1, math.Abs(v)) {
				b.Errorf("%s %s: %v, want %v", q, k, g[k], v)
			}
		}
	default:
		if fmt.Sprint(got) != fmt.Sprint(want) {
			b.Errorf("%s differs from the truth", q)
		}
	}
}
