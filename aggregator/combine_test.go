package aggregator

import (
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/metric"
)

func testCatalog(t testing.TB) *metric.Catalog {
	t.Helper()
	c, err := metric.NewCatalog(append(metric.Builtins(),
		metric.Def{Name: "plans", Kind: metric.Count, Types: []string{"signup"}, Dims: []string{"plan", "price", "trial"}},
		metric.Def{Name: "plan_uniques", Kind: metric.Unique, Field: "plan"},
		metric.Def{Name: "revenue", Kind: metric.Sum, Field: "props.price", Decimals: 2, Types: []string{"signup"}, Dims: []string{"props.plan", "path"}},
		metric.Def{Name: "price_avg", Kind: metric.Avg, Field: "props.price", Decimals: 2, Types: []string{"signup"}, Dims: []string{"plan"}},
	), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// counts is a compact expectation: "metric/step/bucket/dim=value" -> n,
// with dim=value left out for totals.
type counts map[string]int64

func flatten(u *metric.Update) (counts, map[string]map[string]struct{}) {
	c := counts{}
	for k, n := range u.Counts {
		s := k.Site + "/" + k.Metric + "/" + k.Step + "/" + time.UnixMilli(k.Bucket).UTC().Format("15:04:05")
		if k.Dim != "" {
			s += "/" + k.Dim + "=" + k.Value
		}
		c[s] = n
	}
	uq := map[string]map[string]struct{}{}
	for k, v := range u.Uniques {
		uq[k.Site+"/"+k.Metric+"/"+k.Step+"/"+time.UnixMilli(k.Bucket).UTC().Format("15:04:05")] = v
	}
	return c, uq
}

// longPathCut is what metric.CutValue makes of "/" + 2,047 × "p": the
// first 253 bytes and the mark, 256 bytes in all.
var longPathCut = "/" + strings.Repeat("p", 252) + "\u2026"

func TestCombine(t *testing.T) {
	base := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).UnixMilli()
	min := int64(60_000)
	cat, err := metric.NewCatalog(append(metric.Builtins(),
		metric.Def{Name: "plans", Kind: metric.Count, Types: []string{"signup"}, Dims: []string{"plan", "price", "trial"}},
		metric.Def{Name: "engaged", Kind: metric.Count, Types: []string{metric.Engagement}},
		metric.Def{Name: "outbound", Kind: metric.Count, Types: []string{"Outbound Link: Click"}, Dims: []string{"url"}},
	), []metric.Step{{Name: "1m", Width: time.Minute, Retention: time.Hour}, {Name: "1h", Width: time.Hour, Retention: 48 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		ev      event.Event
		outcome string
		want    counts
		uniq    map[string][]string
		skipped []int64 // per step
	}{
		{
			name: "pageview counts in events and pageviews with all dims", outcome: outcomeApplied,
			ev: event.Event{Site: "s", Type: "pageview", TS: base + 5*min + 1, RT: base + 5*min + 2, Path: "/a", RefHost: "news", Device: "mobile", UID: "u1"},
			want: counts{
				"s/events/1m/12:05:00": 1, "s/events/1m/12:05:00/type=pageview": 1,
				"s/events/1h/12:00:00": 1, "s/events/1h/12:00:00/type=pageview": 1,
				"s/pageviews/1m/12:05:00": 1, "s/pageviews/1m/12:05:00/path=/a": 1, "s/pageviews/1m/12:05:00/referrer=news": 1, "s/pageviews/1m/12:05:00/device=mobile": 1,
				"s/pageviews/1h/12:00:00": 1, "s/pageviews/1h/12:00:00/path=/a": 1, "s/pageviews/1h/12:00:00/referrer=news": 1, "s/pageviews/1h/12:00:00/device=mobile": 1,
			},
			uniq: map[string][]string{"s/visitors/1m/12:05:00": {"u1"}, "s/visitors/1h/12:00:00": {"u1"}},
		},
		{
			name: "click with missing dims gets none, no uid no unique", outcome: outcomeApplied,
			ev: event.Event{Site: "s", Type: "click", TS: base, RT: base},
			want: counts{
				"s/events/1m/12:00:00": 1, "s/events/1m/12:00:00/type=click": 1,
				"s/events/1h/12:00:00": 1, "s/events/1h/12:00:00/type=click": 1,
				"s/clicks/1m/12:00:00": 1, "s/clicks/1m/12:00:00/path=(none)": 1, "s/clicks/1m/12:00:00/target=(none)": 1,
				"s/clicks/1h/12:00:00": 1, "s/clicks/1h/12:00:00/path=(none)": 1, "s/clicks/1h/12:00:00/target=(none)": 1,
			},
		},
		{
			name: "props of every type become strings", outcome: outcomeApplied,
			ev: event.Event{Site: "s", Type: "signup", TS: base, RT: base, Props: map[string]any{"plan": "pro", "price": 49.5, "trial": true}},
			want: counts{
				"s/events/1m/12:00:00": 1, "s/events/1m/12:00:00/type=signup": 1,
				"s/events/1h/12:00:00": 1, "s/events/1h/12:00:00/type=signup": 1,
				"s/plans/1m/12:00:00": 1, "s/plans/1m/12:00:00/plan=pro": 1, "s/plans/1m/12:00:00/price=49.5": 1, "s/plans/1m/12:00:00/trial=true": 1,
				"s/plans/1h/12:00:00": 1, "s/plans/1h/12:00:00/plan=pro": 1, "s/plans/1h/12:00:00/price=49.5": 1, "s/plans/1h/12:00:00/trial=true": 1,
			},
		},
		{
			name: "long dimension values are cut with the mark, a long uid is not", outcome: outcomeApplied,
			ev: event.Event{Site: "s", Type: "pageview", TS: base, RT: base, Path: "/" + strings.Repeat("p", 2047), RefHost: "news", Device: "mobile",
				UID: strings.Repeat("u", 300)},
			want: counts{
				"s/events/1m/12:00:00": 1, "s/events/1m/12:00:00/type=pageview": 1,
				"s/events/1h/12:00:00": 1, "s/events/1h/12:00:00/type=pageview": 1,
				"s/pageviews/1m/12:00:00": 1, "s/pageviews/1m/12:00:00/path=" + longPathCut: 1, "s/pageviews/1m/12:00:00/referrer=news": 1, "s/pageviews/1m/12:00:00/device=mobile": 1,
				"s/pageviews/1h/12:00:00": 1, "s/pageviews/1h/12:00:00/path=" + longPathCut: 1, "s/pageviews/1h/12:00:00/referrer=news": 1, "s/pageviews/1h/12:00:00/device=mobile": 1,
			},
			uniq: map[string][]string{"s/visitors/1m/12:00:00": {strings.Repeat("u", 300)}, "s/visitors/1h/12:00:00": {strings.Repeat("u", 300)}},
		},
		{
			name: "engagement counts only where a metric lists it, not in events or visitors", outcome: outcomeApplied,
			ev:   event.Event{Site: "s", Type: metric.Engagement, TS: base, RT: base, Path: "/a", UID: "u1", Props: map[string]any{"scroll_depth": 80.0}},
			want: counts{"s/engaged/1m/12:00:00": 1, "s/engaged/1h/12:00:00": 1},
		},
		{
			name: "a Plausible goal name is a type like any", outcome: outcomeApplied,
			ev: event.Event{Site: "s", Type: "Outbound Link: Click", TS: base, RT: base, Props: map[string]any{"url": "https://x.test/"}},
			want: counts{
				"s/events/1m/12:00:00": 1, "s/events/1m/12:00:00/type=Outbound Link: Click": 1,
				"s/events/1h/12:00:00": 1, "s/events/1h/12:00:00/type=Outbound Link: Click": 1,
				"s/outbound/1m/12:00:00": 1, "s/outbound/1m/12:00:00/url=https://x.test/": 1,
				"s/outbound/1h/12:00:00": 1, "s/outbound/1h/12:00:00/url=https://x.test/": 1,
			},
		},
		{
			name: "bot counts only in bots", outcome: outcomeApplied,
			ev: event.Event{Site: "s", Type: "pageview", TS: base, RT: base, Device: "bot", Bot: true, UID: "b"},
			want: counts{
				"s/bots/1m/12:00:00": 1, "s/bots/1m/12:00:00/type=pageview": 1, "s/bots/1m/12:00:00/device=bot": 1,
				"s/bots/1h/12:00:00": 1, "s/bots/1h/12:00:00/type=pageview": 1, "s/bots/1h/12:00:00/device=bot": 1,
			},
		},
		{
			name: "future ts is clamped to RT", outcome: outcomeClamped,
			ev: event.Event{Site: "s", Type: "x", TS: base + 5*min + 1, RT: base},
			want: counts{
				"s/events/1m/12:00:00": 1, "s/events/1m/12:00:00/type=x": 1,
				"s/events/1h/12:00:00": 1, "s/events/1h/12:00:00/type=x": 1,
			},
		},
		{
			name: "exactly MaxFuture ahead is kept", outcome: outcomeApplied,
			ev: event.Event{Site: "s", Type: "x", TS: base + 5*min, RT: base},
			want: counts{
				"s/events/1m/12:05:00": 1, "s/events/1m/12:05:00/type=x": 1,
				"s/events/1h/12:00:00": 1, "s/events/1h/12:00:00/type=x": 1,
			},
		},
		{
			name: "late beyond a step's retention skips that step", outcome: outcomeApplied,
			ev:      event.Event{Site: "s", Type: "x", TS: base, RT: base + 2*60*min},
			want:    counts{"s/events/1h/12:00:00": 1, "s/events/1h/12:00:00/type=x": 1},
			skipped: []int64{1, 0},
		},
		{
			name: "1m bucket expires exactly at width+retention", outcome: outcomeApplied,
			ev:      event.Event{Site: "s", Type: "x", TS: base, RT: base + 61*min},
			want:    counts{"s/events/1h/12:00:00": 1, "s/events/1h/12:00:00/type=x": 1},
			skipped: []int64{1, 0},
		},
		{
			name: "just inside the 1m retention", outcome: outcomeApplied,
			ev: event.Event{Site: "s", Type: "x", TS: base, RT: base + 61*min - 1},
			want: counts{
				"s/events/1m/12:00:00": 1, "s/events/1m/12:00:00/type=x": 1,
				"s/events/1h/12:00:00": 1, "s/events/1h/12:00:00/type=x": 1,
			},
		},
		{
			name: "exactly the allowed lateness is kept", outcome: outcomeApplied,
			ev:      event.Event{Site: "s", Type: "x", TS: base, RT: base + 24*60*min},
			want:    counts{"s/events/1h/12:00:00": 1, "s/events/1h/12:00:00/type=x": 1},
			skipped: []int64{1, 0},
		},
		{
			name: "extreme ts does not overflow into acceptance", outcome: outcomeTooLate,
			ev:   event.Event{Site: "s", Type: "x", TS: math.MinInt64, RT: base},
			want: counts{},
		},
		{
			name: "beyond the allowed lateness is dropped", outcome: outcomeTooLate,
			ev:   event.Event{Site: "s", Type: "x", TS: base, RT: base + 24*60*min + 1},
			want: counts{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPlan(cat, event.DefaultTimeRule())
			c := newCombiner(p)
			tl := &tally{skipped: make([]int64, len(p.steps))}
			if got := outcomes[c.add(&tt.ev, tl)]; got != tt.outcome {
				t.Errorf("outcome %s, want %s", got, tt.outcome)
			}
			gotC, gotU := flatten(c.update())
			if !maps.Equal(gotC, tt.want) {
				t.Errorf("counts\n got %v\nwant %v", gotC, tt.want)
			}
			if len(gotU) != len(tt.uniq) {
				t.Errorf("uniques %v, want %v", gotU, tt.uniq)
			}
			for k, vs := range tt.uniq {
				for _, v := range vs {
					if _, ok := gotU[k][v]; !ok {
						t.Errorf("unique %s lacks %s: %v", k, v, gotU)
					}
				}
			}
			want := tt.skipped
			if want == nil {
				want = []int64{0, 0}
			}
			for i := range want {
				if tl.skipped[i] != want[i] {
					t.Errorf("skipped %v, want %v", tl.skipped, want)
				}
			}
		})
	}
}

func TestCombineSums(t *testing.T) {
	// Several events of one batch fold into one counter per key, and
	// the combiner starts empty after update.
	p := newPlan(testCatalog(t), event.DefaultTimeRule())
	c := newCombiner(p)
	tl := &tally{skipped: make([]int64, len(p.steps))}
	base := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).UnixMilli()
	for i := range 5 {
		c.add(&event.Event{Site: "s", Type: "pageview", TS: base + int64(i), RT: base, Path: "/p", UID: "u" + string(rune('0'+i%2))}, tl)
	}
	u := c.update()
	k := metric.CountKey{Site: "s", Metric: "pageviews", Step: "10s", Bucket: base, Dim: "path", Value: "/p"}
	if u.Counts[k] != 5 {
		t.Errorf("count %v = %d, want 5", k, u.Counts[k])
	}
	if n := len(u.Uniques[metric.UniqueKey{Site: "s", Metric: "visitors", Step: "1d", Bucket: base - base%86_400_000}]); n != 2 {
		t.Errorf("uniques %d, want 2", n)
	}
	if u2 := c.update(); !u2.Empty() {
		t.Errorf("second update not empty: %v", u2)
	}
}

func TestCombineSumAvg(t *testing.T) {
	base := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).UnixMilli()
	cat, err := metric.NewCatalog([]metric.Def{
		{Name: "revenue", Kind: metric.Sum, Field: "props.price", Decimals: 2, Types: []string{"buy"}, Dims: []string{"props.plan"}},
		{Name: "avg_price", Kind: metric.Avg, Field: "props.price", Decimals: 2, Types: []string{"buy"}, Dims: []string{"plan"}},
	}, []metric.Step{{Name: "1m", Width: time.Minute, Retention: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	buy := func(props map[string]any) event.Event {
		return event.Event{Site: "s", Type: "buy", TS: base, RT: base, Props: props}
	}
	tests := []struct {
		name     string
		evs      []event.Event
		want     counts // sums, in cents
		samples  counts
		unsummed int64
	}{
		{
			name: "decimal prices add exactly, per plan",
			evs: []event.Event{buy(map[string]any{"price": 0.1, "plan": "pro"}), buy(map[string]any{"price": 0.2, "plan": "pro"}),
				buy(map[string]any{"price": "19.99", "plan": "basic"})},
			want: counts{"s/revenue/1m/12:00:00": 2029, "s/revenue/1m/12:00:00/props.plan=pro": 30, "s/revenue/1m/12:00:00/props.plan=basic": 1999,
				"s/avg_price/1m/12:00:00": 2029, "s/avg_price/1m/12:00:00/plan=pro": 30, "s/avg_price/1m/12:00:00/plan=basic": 1999},
			samples: counts{"s/avg_price/1m/12:00:00": 3, "s/avg_price/1m/12:00:00/plan=pro": 2, "s/avg_price/1m/12:00:00/plan=basic": 1},
		},
		{
			name: "a missing plan is (none), a negative price subtracts, rounding half away from zero",
			evs:  []event.Event{buy(map[string]any{"price": -2.5}), buy(map[string]any{"price": 1.005})},
			want: counts{"s/revenue/1m/12:00:00": -149, "s/revenue/1m/12:00:00/props.plan=(none)": -149,
				"s/avg_price/1m/12:00:00": -149, "s/avg_price/1m/12:00:00/plan=(none)": -149},
			samples: counts{"s/avg_price/1m/12:00:00": 2, "s/avg_price/1m/12:00:00/plan=(none)": 2},
		},
		{
			name: "no number, too large or missing: nothing added; the present ones counted once per metric",
			evs: []event.Event{buy(map[string]any{"price": "free", "plan": "pro"}), buy(map[string]any{"price": 2e9}),
				buy(map[string]any{"plan": "pro"}), buy(map[string]any{"price": true})},
			want: counts{}, samples: counts{}, unsummed: 6,
		},
		{
			name: "other types are left out",
			evs:  []event.Event{{Site: "s", Type: "view", TS: base, RT: base, Props: map[string]any{"price": 5.0}}},
			want: counts{}, samples: counts{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPlan(cat, event.DefaultTimeRule())
			c := newCombiner(p)
			tl := &tally{skipped: make([]int64, len(p.steps))}
			for i := range tt.evs {
				c.add(&tt.evs[i], tl)
			}
			u := c.update()
			got, _ := flatten(u)
			if !maps.Equal(got, tt.want) {
				t.Errorf("sums:\n got %v\nwant %v", got, tt.want)
			}
			samples, _ := flatten(&metric.Update{Counts: u.Samples})
			if !maps.Equal(samples, tt.samples) {
				t.Errorf("samples:\n got %v\nwant %v", samples, tt.samples)
			}
			if tl.unsummed != tt.unsummed {
				t.Errorf("unsummed %d, want %d", tl.unsummed, tt.unsummed)
			}
		})
	}
}

// TestCombineSumsInAnyOrder folds the workload's decimal prices in batches of
// every size: the sums must not depend on how events are batched, as they
// would with floats (live aggregation and replay batch differently).
func TestCombineSumsInAnyOrder(t *testing.T) {
	cat := testCatalog(t)
	w := makeWorkload(11, 3000, time.Now().UnixMilli())
	want := truth(cat, w.unique)
	var fractional int
	for k, n := range want.Counts {
		if k.Metric == "revenue" && n%100 != 0 {
			fractional++
		}
	}
	if fractional == 0 || len(want.Samples) == 0 {
		t.Fatalf("the workload has %d revenue sums with cents and %d avg samples: sums not exercised", fractional, len(want.Samples))
	}
	for _, batch := range []int{1, 7, 100} {
		p := newPlan(cat, event.DefaultTimeRule())
		c := newCombiner(p)
		tl := &tally{skipped: make([]int64, len(p.steps))}
		got := metric.NewUpdate()
		// Newest first: the reverse of truth's order.
		for i := len(w.unique) - 1; i >= 0; i-- {
			c.add(&w.unique[i], tl)
			if i%batch == 0 {
				u := c.update()
				for k, n := range u.Counts {
					got.Counts[k] += n
				}
				for k, n := range u.Samples {
					got.Samples[k] += n
				}
			}
		}
		if !maps.Equal(got.Counts, want.Counts) || !maps.Equal(got.Samples, want.Samples) {
			t.Errorf("batches of %d: sums or samples differ from one batch in order", batch)
		}
	}
}
