package redisagg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/push"
)

// env is one store over one backend, with a fixed clock near the real time
// (Redis expires keys by its own clock, so buckets must be current).
type env struct {
	rdb redis.UniversalClient
	st  *Store
	cat *metric.Catalog
	now time.Time
}

func catalog(t testing.TB) *metric.Catalog {
	t.Helper()
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// backends returns the real redis-server and the embedded miniredis, each
// flushed before every case.
func backends(t *testing.T) map[string]redis.UniversalClient {
	t.Helper()
	mr := miniredis.RunT(t)
	mc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = mc.Close() })
	return map[string]redis.UniversalClient{
		"redis-server": redistest.Start(t).Client(t),
		"miniredis":    mc,
	}
}

// adder fills an Update the way the aggregator does: every step, the total
// and each dimension value.
type adder struct {
	cat *metric.Catalog
	u   *metric.Update
}

func newAdder(cat *metric.Catalog) *adder { return &adder{cat: cat, u: metric.NewUpdate()} }

func (a *adder) count(site, m string, ts, n int64, dims ...string) *adder {
	for _, st := range a.cat.Steps {
		b := st.Bucket(ts)
		a.u.Counts[metric.CountKey{Site: site, Metric: m, Step: st.Name, Bucket: b}] += n
		for i := 0; i+1 < len(dims); i += 2 {
			a.u.Counts[metric.CountKey{Site: site, Metric: m, Step: st.Name, Bucket: b, Dim: dims[i], Value: dims[i+1]}] += n
		}
	}
	return a
}

func (a *adder) unique(site, m string, ts int64, vals ...string) *adder {
	for _, st := range a.cat.Steps {
		for _, v := range vals {
			a.u.AddUnique(metric.UniqueKey{Site: site, Metric: m, Step: st.Name, Bucket: st.Bucket(ts)}, v)
		}
	}
	return a
}

func commit(first, last string, fence int64, u *metric.Update) *metric.Commit {
	return &metric.Commit{Shard: "shard-000001", First: first, Last: last, Update: u,
		Pos: metric.Position{Seq: last, DedupFrom: first, DedupClock: 7, Fence: fence}}
}

func (e *env) series(t *testing.T, q SeriesQuery) Result {
	t.Helper()
	r, err := e.st.Series(context.Background(), q)
	if err != nil {
		t.Fatalf("series %+v: %v", q, err)
	}
	return r
}

// sum adds the points of the series labelled value (all series when "").
func sum(r Result, label, value string) int64 {
	var n int64
	for _, s := range r.Series {
		if label != "" && s.Labels[label] != value {
			continue
		}
		for _, p := range s.Points {
			n += p[1]
		}
	}
	return n
}

// deltas reads the delta log of (site, m), checking that each entry's id
// and "metric" agree with its key.
func (e *env) deltas(t *testing.T, site, m string) []push.Delta {
	t.Helper()
	xs, err := e.rdb.XRange(context.Background(), e.st.DeltaLogKey(site, m), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []push.Delta
	for _, x := range xs {
		raw := []byte(x.Values["d"].(string))
		d, err := DecodeDelta(raw)
		if err != nil {
			t.Fatalf("entry %s: %v", x.ID, err)
		}
		if x.ID != strconv.FormatInt(d.N, 10)+"-0" {
			t.Fatalf("entry id %s holds n=%d", x.ID, d.N)
		}
		var named struct{ Metric string }
		if err := json.Unmarshal(raw, &named); err != nil || named.Metric != m {
			t.Fatalf("entry %s of %s names metric %q (%v)", x.ID, m, named.Metric, err)
		}
		out = append(out, d)
	}
	return out
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		cfg  Config
		run  func(t *testing.T, e *env)
	}{
		{name: "apply then redeliver changes nothing", run: func(t *testing.T, e *env) {
			ts := e.now.Add(-2 * time.Minute).UnixMilli()
			u := newAdder(e.cat).count("demo", "pageviews", ts, 3, "path", "/", "device", "mobile").
				count("demo", "pageviews", ts, 2, "path", "/pricing", "device", "desktop").u
			c := commit("1", "5", 0, u)
			for i := 0; i < 2; i++ {
				if err := e.st.Apply(ctx, c); err != nil {
					t.Fatalf("apply %d: %v", i, err)
				}
			}
			q := SeriesQuery{Site: "demo", Metric: "pageviews", Step: "10s", From: ts - 60000, To: ts + 60000}
			if got := sum(e.series(t, q), "", ""); got != 5 {
				t.Errorf("total = %d, want 5", got)
			}
			q.GroupBy = "path"
			r := e.series(t, q)
			if got := sum(r, "path", "/"); got != 3 {
				t.Errorf("path / = %d, want 3", got)
			}
			if len(r.Series) != 2 || r.Series[0].Labels["path"] != "/" {
				t.Errorf("series %+v, want / then /pricing", r.Series)
			}
			if st := e.st.Stats(); st.Parts != 1 || st.Skipped != 1 {
				t.Errorf("stats %+v, want 1 part applied and 1 skipped", st)
			}
			if n := len(e.deltas(t, "demo", "pageviews")); n != 1 {
				t.Errorf("%d delta entries, want 1", n)
			}
			pos, err := e.st.Position(ctx, "shard-000001")
			if err != nil || pos != (metric.Position{Seq: "5", DedupFrom: "1", DedupClock: 7}) {
				t.Errorf("position %+v, %v", pos, err)
			}
		}},
		{name: "long sequence numbers compare by length", run: func(t *testing.T, e *env) {
			ts := e.now.UnixMilli()
			a := "49590338271490256608559692538361571095921575989136588898"
			b := "49590338271490256608559692538361571095921575989136588899"
			if err := e.st.Apply(ctx, commit("9", a, 0, newAdder(e.cat).count("demo", "events", ts, 1, "type", "x").u)); err != nil {
				t.Fatal(err)
			}
			if err := e.st.Apply(ctx, commit(b, b, 0, newAdder(e.cat).count("demo", "events", ts, 1, "type", "x").u)); err != nil {
				t.Fatal(err)
			}
			if err := e.st.Apply(ctx, commit("10", "99", 0, newAdder(e.cat).count("demo", "events", ts, 1, "type", "x").u)); err != nil {
				t.Fatal(err) // 99 < a by length: already applied, skipped
			}
			r := e.series(t, SeriesQuery{Site: "demo", Metric: "events", Step: "1m", From: ts, To: ts})
			if got := sum(r, "", ""); got != 2 {
				t.Errorf("total %d, want 2", got)
			}
		}},
		{name: "overlap is refused", run: func(t *testing.T, e *env) {
			ts := e.now.UnixMilli()
			if err := e.st.Apply(ctx, commit("1", "10", 0, newAdder(e.cat).count("demo", "events", ts, 1, "type", "x").u)); err != nil {
				t.Fatal(err)
			}
			err := e.st.Apply(ctx, commit("5", "15", 0, newAdder(e.cat).count("demo", "events", ts, 1, "type", "x").u))
			if !errors.Is(err, ErrOverlap) {
				t.Fatalf("err = %v, want ErrOverlap", err)
			}
			if got := sum(e.series(t, SeriesQuery{Site: "demo", Metric: "events", Step: "1m", From: ts, To: ts}), "", ""); got != 1 {
				t.Errorf("total %d after refused commit, want 1", got)
			}
		}},
		{name: "lower fence is refused", run: func(t *testing.T, e *env) {
			ts := e.now.UnixMilli()
			if err := e.st.Apply(ctx, commit("1", "10", 5, newAdder(e.cat).count("demo", "events", ts, 1, "type", "x").u)); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*metric.Commit{
				commit("11", "20", 4, newAdder(e.cat).count("demo", "events", ts, 1, "type", "x").u),
				commit("11", "20", 4, newAdder(e.cat).count("other", "events", ts, 1, "type", "x").u), // position fence
			} {
				if err := e.st.Apply(ctx, c); !errors.Is(err, ErrFenced) {
					t.Errorf("err = %v, want ErrFenced", err)
				}
			}
			if err := e.st.Apply(ctx, commit("11", "20", 6, newAdder(e.cat).count("demo", "events", ts, 1, "type", "x").u)); err != nil {
				t.Fatalf("higher fence: %v", err)
			}
			if got := sum(e.series(t, SeriesQuery{Site: "demo", Metric: "events", Step: "1m", From: ts, To: ts}), "", ""); got != 2 {
				t.Errorf("total %d, want 2", got)
			}
			if got := sum(e.series(t, SeriesQuery{Site: "other", Metric: "events", Step: "1m", From: ts, To: ts}), "", ""); got != 0 {
				t.Errorf("fenced site total %d, want 0", got)
			}
		}},
		{name: "expiry set and expired buckets skipped", run: func(t *testing.T, e *env) {
			ts := e.now.Add(-time.Minute).UnixMilli()
			old := e.now.Add(-7 * time.Hour).UnixMilli() // past 10s retention only
			u := newAdder(e.cat).count("demo", "pageviews", ts, 1, "path", "/").count("demo", "pageviews", old, 1, "path", "/").
				unique("demo", "visitors", ts, "u1").u
			if err := e.st.Apply(ctx, commit("1", "2", 0, u)); err != nil {
				t.Fatal(err)
			}
			st10, _ := e.cat.Step("10s")
			st1m, _ := e.cat.Step("1m")
			for _, k := range []struct {
				key string
				exp int64
			}{
				{e.st.keys.count("demo", "pageviews", "10s", st10.Bucket(ts)), st10.ExpireAt(st10.Bucket(ts))},
				{e.st.keys.top("demo", "pageviews", "path", "1m", st1m.Bucket(ts)), st1m.ExpireAt(st1m.Bucket(ts))},
				{e.st.keys.unique("demo", "visitors", "10s", st10.Bucket(ts)), st10.ExpireAt(st10.Bucket(ts))},
			} {
				ttl, err := e.rdb.PTTL(ctx, k.key).Result()
				want := time.Duration(k.exp-time.Now().UnixMilli()) * time.Millisecond
				if err != nil || ttl <= 0 || ttl > want+time.Second || ttl < want-time.Minute {
					t.Errorf("%s: ttl %v (%v), want about %v", k.key, ttl, err, want)
				}
			}
			if n, _ := e.rdb.Exists(ctx, e.st.keys.count("demo", "pageviews", "10s", st10.Bucket(old))).Result(); n != 0 {
				t.Errorf("expired 10s bucket was written")
			}
			if n, _ := e.rdb.Exists(ctx, e.st.keys.count("demo", "pageviews", "1m", st1m.Bucket(old))).Result(); n != 1 {
				t.Errorf("1m bucket of a 7h-old event missing")
			}
			if e.st.Stats().Expired != 2 { // the total and the path counter
				t.Errorf("expired %d, want 2", e.st.Stats().Expired)
			}
		}},
		{name: "dimension overflow goes to other", cfg: Config{MaxDimValues: 3}, run: func(t *testing.T, e *env) {
			ts := e.now.UnixMilli()
			a := newAdder(e.cat)
			for i, p := range []string{"/a", "/b", "/c", "/d", "/e"} {
				a.count("demo", "clicks", ts, int64(10-i), "path", p)
			}
			if err := e.st.Apply(ctx, commit("1", "1", 0, a.u)); err != nil {
				t.Fatal(err)
			}
			b := newAdder(e.cat).count("demo", "clicks", ts, 1, "path", "/a").count("demo", "clicks", ts, 1, "path", "/f")
			if err := e.st.Apply(ctx, commit("2", "2", 0, b.u)); err != nil {
				t.Fatal(err)
			}
			r := e.series(t, SeriesQuery{Site: "demo", Metric: "clicks", Step: "10s", From: ts, To: ts, GroupBy: "path"})
			want := map[string]int64{"/a": 11, "/b": 9, "/c": 8, metric.Other: 7 + 6 + 1}
			if len(r.Series) != len(want) {
				t.Fatalf("series %+v, want %v", r.Series, want)
			}
			for v, n := range want {
				if got := sum(r, "path", v); got != n {
					t.Errorf("%s = %d, want %d", v, got, n)
				}
			}
			if st := e.st.Stats(); st.Overflowed != 3*4 { // /d, /e, /f at 4 steps
				t.Errorf("overflowed %d, want 12", st.Overflowed)
			}
			top, err := e.st.Top(ctx, TopQuery{Site: "demo", Metric: "clicks", Dim: "path", From: ts, To: ts, K: 2})
			if err != nil || len(top) != 2 || top[0] != (TopEntry{metric.Other, 14}) || top[1] != (TopEntry{"/a", 11}) {
				t.Errorf("top %+v, %v", top, err)
			}
		}},
		{name: "dimension byte budget folds into other", cfg: Config{MaxDimBytes: 10}, run: func(t *testing.T, e *env) {
			ts := e.now.UnixMilli()
			// /aaaa and /bbbb fill the 10 bytes exactly; /c does not fit.
			a := newAdder(e.cat).count("demo", "clicks", ts, 5, "path", "/aaaa").count("demo", "clicks", ts, 4, "path", "/bbbb").
				count("demo", "clicks", ts, 3, "path", "/c")
			if err := e.st.Apply(ctx, commit("1", "1", 0, a.u)); err != nil {
				t.Fatal(err)
			}
			b := newAdder(e.cat).count("demo", "clicks", ts, 1, "path", "/aaaa").count("demo", "clicks", ts, 2, "path", "/d")
			if err := e.st.Apply(ctx, commit("2", "2", 0, b.u)); err != nil {
				t.Fatal(err)
			}
			r := e.series(t, SeriesQuery{Site: "demo", Metric: "clicks", Step: "10s", From: ts, To: ts, GroupBy: "path"})
			want := map[string]int64{"/aaaa": 6, "/bbbb": 4, metric.Other: 3 + 2}
			if len(r.Series) != len(want) {
				t.Fatalf("series %+v, want %v", r.Series, want)
			}
			for v, n := range want {
				if got := sum(r, "path", v); got != n {
					t.Errorf("%s = %d, want %d", v, got, n)
				}
			}
			if st := e.st.Stats(); st.Overflowed != 2*4 { // /c, /d at 4 steps
				t.Errorf("overflowed %d, want 8", st.Overflowed)
			}
			st10, _ := e.cat.Step("10s")
			h, err := e.rdb.HGetAll(ctx, e.st.keys.count("demo", "clicks", "10s", st10.Bucket(ts))).Result()
			if err != nil || h["#path"] != "2" || h["#path:bytes"] != "10" {
				t.Errorf("distinct fields %q %q, want 2 and 10 (%v)", h["#path"], h["#path:bytes"], err)
			}
		}},
		{name: "delta entries stay within the byte budget whatever the labels", run: func(t *testing.T, e *env) {
			ts := e.now.UnixMilli()
			// 1,000 distinct 256-byte values (cut values), needing quoting:
			// about 1,000 x 4 steps x 300 bytes of points.
			a := newAdder(e.cat)
			size := 0
			for i := range 1000 {
				v := metric.CutValue(fmt.Sprintf("/%04d\"", i) + strings.Repeat("é", 1000))
				a.count("demo", "pageviews", ts, 1, "path", v)
				size = len(v)
			}
			if err := e.st.Apply(ctx, commit("1", "1", 0, a.u)); err != nil {
				t.Fatal(err)
			}
			xs, err := e.rdb.XRange(ctx, e.st.DeltaLogKey("demo", "pageviews"), "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			var points int
			for _, d := range e.deltas(t, "demo", "pageviews") {
				points += len(d.Points)
			}
			// Every value is new in each of the 4 steps; MaxDimBytes keeps
			// 65536/size of them per bucket, the rest is one (other) point,
			// plus the total.
			if want := 4 * (65536/size + 1 + 1); points != want {
				t.Errorf("%d points in %d entries, want %d", points, len(xs), want)
			}
			if len(xs) < 2 {
				t.Errorf("%d entries: the byte budget did not split the delta", len(xs))
			}
			for _, x := range xs {
				if n := len(x.Values["d"].(string)); n > MaxDeltaEntryBytes {
					t.Errorf("entry %s has %d bytes, more than %d", x.ID, n, MaxDeltaEntryBytes)
				}
			}
		}},
		{name: "delta log is contiguous with exact values", run: func(t *testing.T, e *env) {
			ts := e.now.UnixMilli()
			st10, _ := e.cat.Step("10s")
			for i := 1; i <= 3; i++ {
				u := newAdder(e.cat).count("demo", "events", ts, int64(i), "type", "click").unique("demo", "visitors", ts, "u"+strconv.Itoa(i%2)).u
				s := strconv.Itoa(i)
				if err := e.st.Apply(ctx, commit(s, s, 0, u)); err != nil {
					t.Fatal(err)
				}
			}
			ds := e.deltas(t, "demo", "events")
			if len(ds) != 3 {
				t.Fatalf("%d entries, want 3", len(ds))
			}
			for i, d := range ds {
				if d.N != int64(i+1) || len(d.Points) != 2*len(e.cat.Steps) {
					t.Fatalf("entry %d: %+v", i, d)
				}
			}
			var found int
			for _, p := range ds[2].Points {
				if p.Step == "10s" && p.T == st10.Bucket(ts) {
					found++
					want := push.DeltaPoint{Step: "10s", T: st10.Bucket(ts), Add: 3, Value: 6}
					if p.Label.Dim != "" {
						want.Label = push.Label{Dim: "type", Value: "click"}
					}
					if p != want {
						t.Errorf("point %+v, want %+v", p, want)
					}
				}
			}
			if found != 2 {
				t.Errorf("%d points of the 10s bucket, want 2", found)
			}
			// visitors: u1, u0, u1 again: the third commit adds nothing.
			us := e.deltas(t, "demo", "visitors")
			if len(us) != 2 || us[1].N != 2 || us[1].Points[0].Add != 1 || us[1].Points[0].Value != 2 {
				t.Errorf("visitor deltas %+v, want 2 entries ending at value 2", us)
			}
		}},
		{name: "reference workload batch", run: func(t *testing.T, e *env) {
			// 5,000 events: thousands of counters and HLL values in one
			// script, which must fit the embedded server's Lua limits too.
			u := workload(e.cat, 1, 5000, e.now)[0]
			if err := e.st.Apply(ctx, commit("1", "1", 0, u)); err != nil {
				t.Fatal(err)
			}
			from := e.now.Add(-2 * time.Minute).UnixMilli()
			r := e.series(t, SeriesQuery{Site: "bench", Metric: "events", Step: "10s", From: from, To: e.now.UnixMilli()})
			if got := sum(r, "", ""); got != 5000 {
				t.Errorf("events total %d, want 5000", got)
			}
			// A commit's delta is split into entries of at most 256
			// points, numbered on without gaps.
			var points int
			for _, m := range []string{"events", "pageviews", "clicks", "visitors"} {
				ds := e.deltas(t, "bench", m)
				if len(ds) == 0 {
					t.Fatalf("%s: no delta entries", m)
				}
				for i, d := range ds {
					if d.N != int64(i+1) || len(d.Points) == 0 || len(d.Points) > 256 {
						t.Errorf("%s entry %d: n %d with %d points, want n %d with 1 to 256", m, i, d.N, len(d.Points), i+1)
					}
					points += len(d.Points)
				}
			}
			if points < len(u.Counts) {
				t.Errorf("%d delta points for %d counters", points, len(u.Counts))
			}
		}},
		{name: "delta labels are escaped", run: func(t *testing.T, e *env) {
			ts := e.now.UnixMilli()
			vals := []string{`/a"b`, `/c\d`, "/é/ü", "/tab\tnl\n", "/ctl\x01", "/x</script>"}
			a := newAdder(e.cat)
			for _, v := range vals {
				a.count("demo", "clicks", ts, 1, "target", v)
			}
			if err := e.st.Apply(ctx, commit("1", "1", 0, a.u)); err != nil {
				t.Fatal(err)
			}
			ds := e.deltas(t, "demo", "clicks")
			if len(ds) != 1 {
				t.Fatalf("%d entries, want 1", len(ds))
			}
			seen := map[string]bool{}
			for _, p := range ds[0].Points {
				if p.Label.Dim == "target" && p.Step == "10s" {
					seen[p.Label.Value] = true
				}
			}
			for _, v := range vals {
				if !seen[v] {
					t.Errorf("label %q lost in %+v", v, ds[0].Points)
				}
			}
			r := e.series(t, SeriesQuery{Site: "demo", Metric: "clicks", Step: "10s", From: ts, To: ts, GroupBy: "target"})
			if len(r.Series) != len(vals) {
				t.Errorf("%d series, want %d", len(r.Series), len(vals))
			}
		}},
		{name: "snapshot seq matches the deltas after it", run: func(t *testing.T, e *env) {
			ts := e.now.UnixMilli()
			q := SeriesQuery{Site: "demo", Metric: "pageviews", Step: "10s", From: ts - 30000, To: ts, GroupBy: "path"}
			for i := 1; i <= 2; i++ {
				s := strconv.Itoa(i)
				if err := e.st.Apply(ctx, commit(s, s, 0, newAdder(e.cat).count("demo", "pageviews", ts, 1, "path", "/"+s).u)); err != nil {
					t.Fatal(err)
				}
			}
			seq, snap, err := e.st.Snapshot(ctx, q)
			if err != nil || seq != 2 {
				t.Fatalf("snapshot seq %d, %v; want 2", seq, err)
			}
			if sr := e.series(t, q); !equalResult(sr, snap) {
				t.Errorf("snapshot %+v differs from series %+v", snap, sr)
			}
			if err := e.st.Apply(ctx, commit("3", "3", 0, newAdder(e.cat).count("demo", "pageviews", ts, 4, "path", "/1").u)); err != nil {
				t.Fatal(err)
			}
			// Apply the deltas after seq to the snapshot, as push does.
			for _, d := range e.deltas(t, "demo", "pageviews") {
				if d.N <= seq {
					continue
				}
				for _, p := range d.Points {
					for i := range snap.Series {
						s := &snap.Series[i]
						if p.Step != "10s" || p.Label.Dim != "path" || s.Labels["path"] != p.Label.Value {
							continue
						}
						for j := range s.Points {
							if s.Points[j][0] == p.T {
								if s.Points[j][1]+p.Add != p.Value {
									t.Errorf("delta %+v does not follow snapshot value %d", p, s.Points[j][1])
								}
								s.Points[j][1] = p.Value
							}
						}
					}
				}
			}
			if sr := e.series(t, q); !equalResult(sr, snap) {
				t.Errorf("snapshot+deltas %+v, series %+v", snap, sr)
			}
		}},
		{name: "unique counts", run: func(t *testing.T, e *env) {
			ts := e.now.UnixMilli()
			a := newAdder(e.cat)
			for i := 0; i < 100; i++ {
				a.unique("demo", "visitors", ts, "v"+strconv.Itoa(i))
			}
			if err := e.st.Apply(ctx, commit("1", "1", 0, a.u)); err != nil {
				t.Fatal(err)
			}
			r := e.series(t, SeriesQuery{Site: "demo", Metric: "visitors", Step: "1h", From: ts, To: ts})
			if got := sum(r, "", ""); got < 97 || got > 103 {
				t.Errorf("visitors %d, want about 100", got)
			}
			if _, err := e.st.Series(ctx, SeriesQuery{Site: "demo", Metric: "visitors", Step: "1h", From: ts, To: ts, GroupBy: "path"}); !errors.Is(err, ErrQuery) {
				t.Errorf("group_by on unique: %v, want ErrQuery", err)
			}
		}},
		{name: "series zeros and top picks the step", run: func(t *testing.T, e *env) {
			ts := e.now.Add(-time.Hour).UnixMilli()
			u := newAdder(e.cat).count("demo", "pageviews", ts, 5, "referrer", "news.example").
				count("demo", "pageviews", ts, 2, "referrer", "(none)").u
			if err := e.st.Apply(ctx, commit("1", "1", 0, u)); err != nil {
				t.Fatal(err)
			}
			st, _ := e.cat.Step("1m")
			from := st.Bucket(ts) - 5*60000
			r := e.series(t, SeriesQuery{Site: "demo", Metric: "pageviews", Step: "1m", From: from + 1, To: st.Bucket(ts) + 59999})
			if len(r.Series) != 1 || len(r.Series[0].Points) != 6 || r.Series[0].Points[0] != [2]int64{from, 0} || r.Series[0].Points[5] != [2]int64{st.Bucket(ts), 7} {
				t.Errorf("series %+v", r.Series)
			}
			top, err := e.st.Top(ctx, TopQuery{Site: "demo", Metric: "pageviews", Dim: "referrer", From: e.now.Add(-30 * 24 * time.Hour).UnixMilli(), To: e.now.UnixMilli()})
			if err != nil || len(top) != 2 || top[0] != (TopEntry{"news.example", 5}) {
				t.Errorf("top %+v, %v", top, err)
			}
		}},
	}
	for name, rdb := range backends(t) {
		for _, tc := range cases {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				if err := rdb.FlushAll(ctx).Err(); err != nil {
					t.Fatal(err)
				}
				now := time.Now()
				cfg := tc.cfg
				cfg.Now = func() time.Time { return now }
				e := &env{rdb: rdb, cat: catalog(t), now: now}
				e.st = New(rdb, e.cat, cfg)
				tc.run(t, e)
			})
		}
	}
}

func equalResult(a, b Result) bool {
	if a.Metric != b.Metric || a.Step != b.Step || len(a.Series) != len(b.Series) {
		return false
	}
	for i := range a.Series {
		x, y := a.Series[i], b.Series[i]
		if len(x.Labels) != len(y.Labels) || len(x.Points) != len(y.Points) {
			return false
		}
		for k, v := range x.Labels {
			if y.Labels[k] != v {
				return false
			}
		}
		for j := range x.Points {
			if x.Points[j] != y.Points[j] {
				return false
			}
		}
	}
	return true
}
