package redisagg

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestGroupedFromTopSets checks that a group_by at a step with top-K sets
// (and Top) answers exactly what the ground truth gives: the values with
// the largest totals, ties to the smaller value, and their exact count in
// every bucket, over short and long (chunked) ranges.
func TestGroupedFromTopSets(t *testing.T) {
	ctx := context.Background()
	for name, rdb := range backends(t) {
		t.Run(name, func(t *testing.T) {
			if err := rdb.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			cat := catalog(t)
			st := New(rdb, cat, Config{Now: func() time.Time { return now }})
			m1, _ := cat.Step("1m")
			last := m1.Bucket(now.UnixMilli())
			// 6 buckets of 40 values with counts 1..3: many ties.
			rng := rand.New(rand.NewPCG(1, 2))
			truth := map[int64]map[string]int64{}
			a := newAdder(cat)
			for i := range int64(6) {
				b := last - i*60_000
				truth[b] = map[string]int64{}
				for v := range 40 {
					if rng.IntN(3) == 0 {
						continue
					}
					n := int64(1 + rng.IntN(3))
					val := fmt.Sprintf("/p%02d", v)
					truth[b][val] += n
					a.count("demo", "pageviews", b, n, "path", val)
				}
			}
			if err := st.Apply(ctx, commit("1", "1", 0, a.u)); err != nil {
				t.Fatal(err)
			}
			entries, err := rdb.XLen(ctx, st.DeltaLogKey("demo", "pageviews")).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name     string
				from     int64
				limit    int
				nbuckets int
			}{
				{name: "one bucket", from: last, limit: 5, nbuckets: 1},
				{name: "six buckets", from: last - 5*60_000, limit: 7, nbuckets: 6},
				{name: "more than there are", from: last - 5*60_000, limit: 100, nbuckets: 6},
				{name: "1,200 buckets", from: last - 1199*60_000, limit: 10, nbuckets: 1200},
			} {
				t.Run(tc.name, func(t *testing.T) {
					want := expectGrouped(truth, tc.from, last, tc.limit)
					q := SeriesQuery{Site: "demo", Metric: "pageviews", Step: "1m", From: tc.from, To: last, GroupBy: "path", Limit: tc.limit}
					r, err := st.Series(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					checkGrouped(t, r, want, truth, tc.nbuckets)
					seq, sr, err := st.Snapshot(ctx, q)
					if err != nil || seq != entries || !equalResult(r, sr) {
						t.Errorf("snapshot seq %d (want %d), %v; equal to the series: %v", seq, entries, err, equalResult(r, sr))
					}
					top, err := st.Top(ctx, TopQuery{Site: "demo", Metric: "pageviews", Dim: "path", From: tc.from, To: last, K: tc.limit})
					if err != nil || !slices.Equal(top, want) {
						t.Errorf("top %+v, %v\nwant %+v", top, err, want)
					}
				})
			}
			if n, err := rdb.Exists(ctx, st.keys.scratch("demo")).Result(); err != nil || n != 0 {
				t.Errorf("the scratch key outlived the read: %d, %v", n, err)
			}
		})
	}
}

// expectGrouped is the top-limit of the ground truth over [from, to].
func expectGrouped(truth map[int64]map[string]int64, from, to int64, limit int) []TopEntry {
	tot := map[string]int64{}
	for b, vals := range truth {
		if b < from || b > to {
			continue
		}
		for v, n := range vals {
			tot[v] += n
		}
	}
	var out []TopEntry
	for v, n := range tot {
		out = append(out, TopEntry{v, n})
	}
	slices.SortFunc(out, func(a, b TopEntry) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

func checkGrouped(t *testing.T, r Result, want []TopEntry, truth map[int64]map[string]int64, nbuckets int) {
	t.Helper()
	if len(r.Series) != len(want) {
		t.Fatalf("%d series, want %d (%+v)", len(r.Series), len(want), want)
	}
	for i, s := range r.Series {
		if s.Labels["path"] != want[i].Value {
			t.Errorf("series %d is %q, want %q", i, s.Labels["path"], want[i].Value)
		}
		if len(s.Points) != nbuckets {
			t.Fatalf("series %d has %d points, want %d", i, len(s.Points), nbuckets)
		}
		var sum int64
		for _, p := range s.Points {
			if p[1] != truth[p[0]][want[i].Value] {
				t.Errorf("%s at %d: %d, want %d", want[i].Value, p[0], p[1], truth[p[0]][want[i].Value])
			}
			sum += p[1]
		}
		if sum != want[i].Count {
			t.Errorf("%s sums to %d, want %d", want[i].Value, sum, want[i].Count)
		}
	}
}

// TestHashSnapshot checks the snapshot of a group_by at the 10s step, which
// keeps no top-K sets and reads whole hashes in a MULTI/EXEC: the same
// answer as Series and as the ground truth, ties ordered by bytes.
func TestHashSnapshot(t *testing.T) {
	ctx := context.Background()
	for name, rdb := range backends(t) {
		t.Run(name, func(t *testing.T) {
			if err := rdb.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			cat := catalog(t)
			st := New(rdb, cat, Config{Now: func() time.Time { return now }})
			s10, _ := cat.Step("10s")
			last := s10.Bucket(now.UnixMilli())
			rng := rand.New(rand.NewPCG(3, 4))
			vals := []string{"/Z", "/a", "/é", "/z", "/É", "/ab", "/a b", "/\u2026", "(none)"}
			for i := range 40 {
				vals = append(vals, fmt.Sprintf("/p%02d", i))
			}
			truth := map[int64]map[string]int64{}
			a := newAdder(cat)
			for i := range int64(9) {
				b := last - i*10_000
				truth[b] = map[string]int64{}
				for _, v := range vals {
					if rng.IntN(3) == 0 {
						continue
					}
					n := int64(1 + rng.IntN(2))
					truth[b][v] += n
					a.count("demo", "clicks", b, n, "path", v)
				}
			}
			if err := st.Apply(ctx, commit("1", "1", 0, a.u)); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				from     int64
				limit    int
				nbuckets int
			}{
				{from: last, limit: 3, nbuckets: 1},
				{from: last - 8*10_000, limit: 7, nbuckets: 9},
				{from: last - 8*10_000, limit: 100, nbuckets: 9},
				{from: last - 20*10_000, limit: 10, nbuckets: 21},
			} {
				q := SeriesQuery{Site: "demo", Metric: "clicks", Step: "10s", From: tc.from, To: last, GroupBy: "path", Limit: tc.limit}
				_, sr, err := st.Snapshot(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				checkGrouped(t, sr, expectGrouped(truth, tc.from, last, tc.limit), truth, tc.nbuckets)
				if r := sumSeries(t, st, q); !equalResult(r, sr) {
					t.Errorf("limit %d from %d: the snapshot differs from the series", tc.limit, tc.from)
				}
			}
			_, empty, err := st.Snapshot(ctx, SeriesQuery{Site: "nobody", Metric: "clicks", Step: "10s", From: last, To: last, GroupBy: "path"})
			if err != nil || len(empty.Series) != 0 {
				t.Errorf("snapshot of an empty site: %+v, %v", empty, err)
			}
		})
	}
}

func sumSeries(t *testing.T, st *Store, q SeriesQuery) Result {
	t.Helper()
	r, err := st.Series(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
