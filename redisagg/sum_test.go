package redisagg

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/metric"
)

func sumCatalog(t testing.TB) *metric.Catalog {
	t.Helper()
	cat, err := metric.NewCatalog(append(metric.Builtins(),
		metric.Def{Name: "revenue", Kind: metric.Sum, Field: "props.price", Decimals: 2, Types: []string{"purchase"}, Dims: []string{"plan"}},
		metric.Def{Name: "order_value", Kind: metric.Avg, Field: "props.price", Decimals: 2, Types: []string{"purchase"}, Dims: []string{"plan"}},
	), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// sample adds n events behind an avg's sum, as adder.count adds the sum.
func (a *adder) sample(site, m string, ts, n int64, dims ...string) *adder {
	for _, st := range a.cat.Steps {
		b := st.Bucket(ts)
		a.u.Samples[metric.CountKey{Site: site, Metric: m, Step: st.Name, Bucket: b}] += n
		for i := 0; i+1 < len(dims); i += 2 {
			a.u.Samples[metric.CountKey{Site: site, Metric: m, Step: st.Name, Bucket: b, Dim: dims[i], Value: dims[i+1]}] += n
		}
	}
	return a
}

// purchases is 19.99 three times on plan pro and 5.01 once on basic, in
// cents, for both the sum and the avg metric.
func purchases(cat *metric.Catalog, ts int64) *metric.Update {
	a := newAdder(cat)
	for _, m := range []string{"revenue", "order_value"} {
		a.count("shop", m, ts, 5997, "plan", "pro").count("shop", m, ts, 501, "plan", "basic")
	}
	return a.sample("shop", "order_value", ts, 3, "plan", "pro").sample("shop", "order_value", ts, 1, "plan", "basic").u
}

func TestSumAndAvg(t *testing.T) {
	ctx := context.Background()
	for name, rdb := range backends(t) {
		t.Run(name, func(t *testing.T) {
			if err := rdb.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			cat := sumCatalog(t)
			st := New(rdb, cat, Config{Now: func() time.Time { return now }})
			ts := now.Add(-2 * time.Minute).UnixMilli()
			c := commit("1", "4", 0, purchases(cat, ts))
			for i := range 2 { // the second is a redelivery: skipped
				if err := st.Apply(ctx, c); err != nil {
					t.Fatalf("apply %d: %v", i, err)
				}
			}
			for _, step := range []string{"10s", "1m"} { // whole hashes, and top-K sets
				q := SeriesQuery{Site: "shop", Metric: "revenue", Step: step, From: ts, To: ts}
				r, err := st.Series(ctx, q)
				if err != nil || sum(r, "", "") != 6498 {
					t.Errorf("%s revenue total %+v %v, want 6498 cents", step, r, err)
				}
				q.GroupBy = "plan"
				if r, err = st.Series(ctx, q); err != nil || len(r.Series) != 2 || r.Series[0].Labels["plan"] != "pro" ||
					sum(r, "plan", "pro") != 5997 || sum(r, "plan", "basic") != 501 {
					t.Errorf("%s revenue by plan %+v %v", step, r, err)
				}
				q.Metric, q.GroupBy = "order_value", ""
				if r, err = st.Series(ctx, q); err != nil || len(r.Series) != 1 || r.Series[0].Points[0][1] != 6498 ||
					!slices.Equal(r.Series[0].Samples, []int64{4}) {
					t.Errorf("%s order_value total %+v %v, want 6498 over 4", step, r, err)
				}
				q.GroupBy = "plan"
				r, err = st.Series(ctx, q)
				if err != nil || len(r.Series) != 2 || r.Series[0].Labels["plan"] != "pro" || r.Series[0].Points[0][1] != 5997 ||
					r.Series[0].Samples[0] != 3 || r.Series[1].Points[0][1] != 501 || r.Series[1].Samples[0] != 1 {
					t.Errorf("%s order_value by plan %+v %v, want pro 5997/3, basic 501/1", step, r, err)
				}
			}
			top, err := st.Top(ctx, TopQuery{Site: "shop", Metric: "revenue", Dim: "plan", From: ts, To: ts})
			if err != nil || !slices.Equal(top, []TopEntry{{"pro", 5997}, {"basic", 501}}) {
				t.Errorf("top revenue %+v %v", top, err)
			}
			if _, err := st.Top(ctx, TopQuery{Site: "shop", Metric: "order_value", Dim: "plan", From: ts, To: ts}); !errors.Is(err, ErrQuery) {
				t.Errorf("top of an avg: %v, want ErrQuery", err)
			}
			for _, m := range []string{"revenue", "order_value"} {
				if _, _, err := st.Snapshot(ctx, SeriesQuery{Site: "shop", Metric: m, Step: "10s", From: ts, To: ts}); !errors.Is(err, ErrQuery) {
					t.Errorf("snapshot of %s: %v, want ErrQuery", m, err)
				}
				if n, err := rdb.Exists(ctx, st.keys.deltaSeq("shop", m), st.DeltaLogKey("shop", m)).Result(); err != nil || n != 0 {
					t.Errorf("%s has %d delta keys (%v), want none", m, n, err)
				}
			}
			// An avg keeps no top-K sets.
			if keys, _ := rdb.Keys(ctx, "p:v1:{shop}:t:order_value:*").Result(); len(keys) != 0 {
				t.Errorf("top-K sets of an avg: %v", keys)
			}
		})
	}
}

// TestSumSaturates adds past 2^53-1 cents, up and down: the sum stays at
// the bound, where the script's doubles are still exact integers, and the
// store counts it, on redis-server and on the embedded server's Lua alike.
func TestSumSaturates(t *testing.T) {
	ctx := context.Background()
	for name, rdb := range backends(t) {
		t.Run(name, func(t *testing.T) {
			if err := rdb.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			cat := sumCatalog(t)
			st := New(rdb, cat, Config{Now: func() time.Time { return now }})
			ts := now.Add(-time.Minute).UnixMilli()
			q := SeriesQuery{Site: "shop", Metric: "revenue", Step: "1m", From: ts, To: ts}
			steps := []struct {
				add, want int64
			}{
				{metric.MaxScaled - 5, metric.MaxScaled - 5},
				{1e15, metric.MaxScaled},
				{-1e15, metric.MaxScaled - 1e15},
				{-metric.MaxScaled, -1e15},
				{-metric.MaxScaled, -metric.MaxScaled},
			}
			for i, s := range steps {
				u := newAdder(cat).count("shop", "revenue", ts, s.add, "plan", "pro").u
				seq := string(rune('1' + i))
				if err := st.Apply(ctx, commit(seq, seq, 0, u)); err != nil {
					t.Fatalf("apply %d: %v", i, err)
				}
				r, err := st.Series(ctx, q)
				if err != nil || r.Series[0].Points[0][1] != s.want {
					t.Fatalf("after adding %d: %+v %v, want %d", s.add, r, err, s.want)
				}
			}
			// Total and plan=pro, at each of 4 steps, twice.
			if got := st.Stats().Saturated; got != 16 {
				t.Errorf("saturated %d, want 16", got)
			}
		})
	}
}

// TestAvgCapsAlike fills an avg past the dimension cap with values whose
// sums and event numbers rank them differently: the sum and samples hashes
// must hold the same values, the rest in (other) in both.
func TestAvgCapsAlike(t *testing.T) {
	ctx := context.Background()
	rdb := backends(t)["redis-server"]
	now := time.Now()
	cat := sumCatalog(t)
	st := New(rdb, cat, Config{Now: func() time.Time { return now }, MaxDimValues: 2})
	ts := now.Add(-time.Minute).UnixMilli()
	a := newAdder(cat)
	for _, v := range []struct {
		plan   string
		sum, n int64
	}{{"a", 1, 5}, {"b", 900, 1}, {"c", 0, 3}, {"d", -50, 2}} {
		a.count("shop", "order_value", ts, v.sum, "plan", v.plan).sample("shop", "order_value", ts, v.n, "plan", v.plan)
	}
	if err := st.Apply(ctx, commit("1", "1", 0, a.u)); err != nil {
		t.Fatal(err)
	}
	for _, step := range cat.Steps {
		b := step.Bucket(ts)
		fields := func(key string) map[string]string {
			h, err := rdb.HGetAll(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for f, v := range h {
				if d, val, ok := strings.Cut(f, fieldSep); ok && d == "plan" {
					out[val] = v
				}
			}
			return out
		}
		sums, ns := fields(st.keys.count("shop", "order_value", step.Name, b)), fields(st.keys.samples("shop", "order_value", step.Name, b))
		// By events: a (5) and c (3) keep their fields; b and d fold.
		wantSums := map[string]string{"a": "1", "c": "0", metric.Other: "850"}
		wantNs := map[string]string{"a": "5", "c": "3", metric.Other: "3"}
		if !maps.Equal(sums, wantSums) || !maps.Equal(ns, wantNs) {
			t.Errorf("%s: sums %v, samples %v; want %v, %v", step.Name, sums, ns, wantSums, wantNs)
		}
	}
}
