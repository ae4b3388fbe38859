package stats

import (
	"cmp"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// execNow is the "now" of the executor's tests: Monday 2026-12-07 12:00 UTC.
var execNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// execRows are the events of the tests, on 2026-12-06 and 2026-12-07.
// Visitors 1-4; visitor 4 arrives from google and buys twice.
func execRows() []Row {
	at := func(day, hour, min int) int64 {
		return time.Date(2026, 12, day, hour, min, 0, 0, time.UTC).UnixMilli()
	}
	pro := []RowProp{{Key: "plan", Value: "pro"}}
	price := func(p float64, plan string) []RowProp {
		return []RowProp{{Key: "plan", Value: plan}, {Key: "price", Value: "", Num: p, IsNum: true}}
	}
	return []Row{
		{TS: at(6, 10, 0), Goal: "pageview", Page: "/", Hostname: "shop.test", Referrer: "news.example", Device: "desktop", Visitor: 1},
		{TS: at(6, 10, 5), Goal: "pageview", Page: "/pricing", Hostname: "shop.test", Referrer: "news.example", Device: "desktop", Visitor: 1},
		{TS: at(6, 23, 59), Goal: "signup", Page: "/pricing", Hostname: "shop.test", Device: "desktop", Visitor: 1, Props: pro},
		{TS: at(7, 9, 0), Goal: "pageview", Page: "/", Hostname: "shop.test", Device: "mobile", Visitor: 2},
		{TS: at(7, 9, 1), Goal: "pageview", Page: "/docs", Hostname: "docs.shop.test", Device: "mobile", Visitor: 2},
		{TS: at(7, 10, 0), Goal: "pageview", Page: "/", Hostname: "shop.test", Referrer: "www.google.com", Device: "tablet", Visitor: 3},
		{TS: at(7, 11, 0), Goal: "pageview", Page: "/pricing", Hostname: "shop.test", Referrer: "www.google.com", Device: "desktop", Visitor: 4},
		{TS: at(7, 11, 1), Goal: "purchase", Page: "/pricing", Hostname: "shop.test", Device: "desktop", Visitor: 4, Props: price(19.99, "pro")},
		{TS: at(7, 11, 2), Goal: "purchase", Page: "/pricing", Hostname: "shop.test", Device: "desktop", Visitor: 4, Props: price(19.99, "pro")},
		{TS: at(7, 11, 3), Goal: "purchase", Page: "/cart", Hostname: "shop.test", Device: "desktop", Visitor: 4, Props: price(5.01, "basic")},
		{TS: at(7, 11, 30), Goal: "pageview", Page: "/", Hostname: "shop.test", Device: "desktop"},                // no visitor id
		{TS: time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC).UnixMilli(), Goal: "pageview", Page: "/", Visitor: 9}, // before every range below
	}
}

func TestExecute(t *testing.T) {
	tests := []struct {
		name, body string
		want       string // JSON of results
		meta       string // JSON of meta, when checked
	}{
		{"totals over two days: visitors are a union",
			`{"metrics":["visitors","pageviews","events"],"date_range":["2026-12-06","2026-12-07"]}`,
			`[{"dimensions":[],"metrics":[4,7,11]}]`, ""},
		{"one day",
			`{"metrics":["visitors","pageviews"],"date_range":"day"}`,
			`[{"dimensions":[],"metrics":[3,5]}]`, ""},
		{"by page, default order: first metric descending, then label",
			`{"metrics":["pageviews","visitors"],"date_range":"7d","dimensions":["event:page"]}`,
			`[{"dimensions":["/"],"metrics":[4,3]},{"dimensions":["/pricing"],"metrics":[2,2]},{"dimensions":["/docs"],"metrics":[1,1]},{"dimensions":["/cart"],"metrics":[0,1]}]`, ""},
		{"filter contains, case-insensitive",
			`{"metrics":["pageviews"],"date_range":"7d","dimensions":["event:page"],"filters":[["contains","visit:referrer",["GOOGLE"],{"case_sensitive":false}]]}`,
			`[{"dimensions":["/"],"metrics":[1]},{"dimensions":["/pricing"],"metrics":[1]}]`, ""},
		{"or, not, matches",
			`{"metrics":["events"],"date_range":"7d","filters":[["or",[["is","visit:device",["mobile"]],["matches","event:page",["^/c"]]]],["not",["is","visit:device",["tablet"]]],["is_not","event:hostname",["docs.shop.test"]]]}`,
			`[{"dimensions":[],"metrics":[2]}]`, ""},
		{"goals by day in Berlin: 23:59 UTC is the next day there",
			`{"metrics":["events"],"date_range":"7d","dimensions":["event:goal","time:day"],"filters":[["is_not","event:goal",["pageview"]]],"timezone":"Europe/Berlin"}`,
			`[{"dimensions":["purchase","2026-12-07"],"metrics":[3]},{"dimensions":["signup","2026-12-07"],"metrics":[1]}]`, ""},
		{"sum and avg of a prop, exact in decimals, by plan",
			`{"metrics":["sum:props.price","avg:props.price","events"],"date_range":"7d","dimensions":["event:props:plan"]}`,
			`[{"dimensions":["pro"],"metrics":[39.98,19.99,3]},{"dimensions":["basic"],"metrics":[5.01,5.01,1]},{"dimensions":["(none)"],"metrics":[0,null,7]}]`, ""},
		{"conversion rate by goal: visitors who did it over all visitors",
			`{"metrics":["visitors","conversion_rate"],"date_range":"7d","dimensions":["event:goal"],"filters":[["is","event:goal",["signup","purchase"]]]}`,
			`[{"dimensions":["purchase"],"metrics":[1,25]},{"dimensions":["signup"],"metrics":[1,25]}]`, ""},
		{"percentage of visitors by device",
			`{"metrics":["visitors","percentage"],"date_range":"7d","dimensions":["visit:device"]}`,
			`[{"dimensions":["desktop"],"metrics":[2,50]},{"dimensions":["mobile"],"metrics":[1,25]},{"dimensions":["tablet"],"metrics":[1,25]}]`, ""},
		{"order by a dimension, pagination, total rows",
			`{"metrics":["events"],"date_range":"7d","dimensions":["event:page"],"order_by":[["event:page","asc"]],"pagination":{"limit":2,"offset":1},"include":{"total_rows":true}}`,
			`[{"dimensions":["/cart"],"metrics":[1]},{"dimensions":["/docs"],"metrics":[1]}]`, `{"total_rows":4,"approximate":[]}`},
		{"hours with time labels",
			`{"metrics":["pageviews"],"date_range":["2026-12-07T09:00:00Z","2026-12-07T12:00:00Z"],"dimensions":["time:hour"],"include":{"time_labels":true}}`,
			`[{"dimensions":["2026-12-07 09:00:00"],"metrics":[2]},{"dimensions":["2026-12-07 10:00:00"],"metrics":[1]},{"dimensions":["2026-12-07 11:00:00"],"metrics":[2]}]`,
			`{"time_labels":["2026-12-07 09:00:00","2026-12-07 10:00:00","2026-12-07 11:00:00"],"approximate":[]}`},
		{"nothing in range",
			`{"metrics":["visitors"],"date_range":["2026-11-01","2026-11-02"],"dimensions":["event:page"]}`,
			`[]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse([]byte(`{"site_id":"shop",`+tt.body[1:]), execNow)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			a, err := Execute(q, RowsOf(execRows()))
			if err != nil {
				t.Fatalf("execute: %v", err)
			}
			if got := mustJSON(t, a.Results); got != tt.want {
				t.Errorf("results\n got %s\nwant %s", got, tt.want)
			}
			if tt.meta != "" {
				if got := mustJSON(t, a.Meta); got != tt.meta {
					t.Errorf("meta\n got %s\nwant %s", got, tt.meta)
				}
			}
		})
	}
}

// TestExecuteRefuses: what events alone cannot answer is an *Error naming
// the part, never a different answer.
func TestExecuteRefuses(t *testing.T) {
	tests := []struct{ body, part string }{
		{`{"metrics":["visits"],"date_range":"7d"}`, "metrics[0]"},
		{`{"metrics":["events"],"date_range":"7d","dimensions":["visit:source"]}`, "dimensions[0]"},
		{`{"metrics":["events"],"date_range":"7d","filters":[["is","visit:entry_page",["/"]]]}`, "filters[0]"},
		{`{"metrics":["events"],"date_range":"all"}`, "date_range"},
	}
	for _, tt := range tests {
		q, err := Parse([]byte(`{"site_id":"shop",`+tt.body[1:]), execNow)
		if err != nil {
			t.Fatalf("parse %s: %v", tt.body, err)
		}
		_, err = Execute(q, RowsOf(execRows()))
		var e *Error
		if !errors.As(err, &e) || e.Part != tt.part {
			t.Errorf("%s: error %v, want an *Error of part %s", tt.body, err, tt.part)
		}
	}
}

// TestExecuteMaxGroups: a query whose rows would pass the bound on rows
// is refused, not answered in part; at the bound it is answered.
func TestExecuteMaxGroups(t *testing.T) {
	q, err := Parse([]byte(`{"site_id":"shop","metrics":["events"],"date_range":"7d","dimensions":["event:page"]}`), execNow)
	if err != nil {
		t.Fatal(err)
	}
	pages := func(n int) func(func(*Row) bool) {
		return func(yield func(*Row) bool) {
			for i := range n {
				if !yield(&Row{TS: execNow.Add(-time.Hour).UnixMilli(), Goal: "pageview", Page: "/p" + strconv.Itoa(i)}) {
					return
				}
			}
		}
	}
	if a, err := execute(q, pages(10), 10); err != nil || len(a.Results) != 10 {
		t.Fatalf("10 rows at a bound of 10: %d rows, %v", len(a.Results), err)
	}
	if _, err := execute(q, pages(11), 10); err == nil || !strings.Contains(err.Error(), "dimensions: more than 10 rows") {
		t.Fatalf("error %v, want the rows bound", err)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestExecutionIncremental: an open execution answered after every row
// (Answer leaves it as it was) equals Execute over the rows so far.
func TestExecutionIncremental(t *testing.T) {
	bodies := []string{
		`{"metrics":["visitors","pageviews","events"],"date_range":["2026-12-06","2026-12-07"]}`,
		`{"metrics":["visitors","conversion_rate"],"date_range":"7d","dimensions":["event:goal"],"filters":[["is","event:goal",["signup","purchase"]]]}`,
		`{"metrics":["visitors","percentage"],"date_range":"7d","dimensions":["visit:device"]}`,
		`{"metrics":["sum:props.price","avg:props.price","events"],"date_range":"7d","dimensions":["event:props:plan","time:day"],"include":{"total_rows":true,"time_labels":true},"pagination":{"limit":2}}`,
	}
	rows := execRows()
	for _, b := range bodies {
		q, err := Parse([]byte(`{"site_id":"shop",`+b[1:]), execNow)
		if err != nil {
			t.Fatalf("parse %s: %v", b, err)
		}
		x, err := NewExecution(q)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		for i := range rows {
			if err := x.Add(&rows[i]); err != nil {
				t.Fatalf("%s: add row %d: %v", b, i, err)
			}
			got, err := x.Answer()
			if err != nil {
				t.Fatalf("%s: answer after row %d: %v", b, i, err)
			}
			want, err := Execute(q, RowsOf(rows[:i+1]))
			if err != nil {
				t.Fatal(err)
			}
			if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
				t.Fatalf("%s after row %d:\n got %s\nwant %s", b, i, g, w)
			}
		}
	}
	q, _ := Parse([]byte(`{"site_id":"shop","metrics":["visits"],"date_range":"7d"}`), execNow)
	if _, err := NewExecution(q); err == nil {
		t.Errorf("NewExecution of a visit-level metric: no error")
	}
}

// TestRadixSortVisits: the radix sort orders pairs as a comparison sort
// does, whatever bits vary (passes over equal bits are skipped).
func TestRadixSortVisits(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name   string
		n      int
		group  func() int32
		visitr func() uint64
	}{
		{"random", 5000, func() int32 { return rng.Int32N(1 << 20) }, rng.Uint64},
		{"few groups, low visitor bits", 3000, func() int32 { return rng.Int32N(3) }, func() uint64 { return rng.Uint64N(1 << 10) }},
		{"one group, high bits only", 2000, func() int32 { return 0 }, func() uint64 { return rng.Uint64N(8) << 61 }},
		{"one pair", 1, func() int32 { return 7 }, func() uint64 { return 9 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := make([]visit, tc.n)
			for i := range p {
				p[i] = visit{tc.group(), tc.visitr()}
			}
			want := slices.Clone(p)
			slices.SortFunc(want, func(a, b visit) int {
				if c := cmp.Compare(a.group, b.group); c != 0 {
					return c
				}
				return cmp.Compare(a.visitor, b.visitor)
			})
			if got := radixSortVisits(p); !slices.Equal(got, want) {
				t.Errorf("radix sort differs from a comparison sort")
			}
		})
	}
}
