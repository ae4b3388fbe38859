package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// segmentRows are rows over three days before now with every kind of value
// a column holds: referrers missing, props missing, numeric and text, a
// literal "(none)", pages past 255 and 65,535 distinct ids.
func segmentRows(rng *rand.Rand, n int) []Row {
	start := now.Add(-72 * time.Hour).UnixMilli()
	pages := 300
	rows := make([]Row, n)
	for i := range rows {
		r := Row{
			TS:       start + rng.Int64N(now.UnixMilli()-start),
			Goal:     []string{"pageview", "pageview", "pageview", "signup", "purchase"}[rng.IntN(5)],
			Page:     fmt.Sprintf("/p/%d", rng.IntN(pages)),
			Hostname: []string{"shop.test", "docs.shop.test"}[rng.IntN(2)],
			Referrer: []string{"", "", "www.google.com", "news.example", "t.co"}[rng.IntN(5)],
			Device:   []string{"desktop", "mobile", "tablet"}[rng.IntN(3)],
			Visitor:  uint64(rng.IntN(400)),
		}
		if i%1000 == 7 {
			r.Page = fmt.Sprintf("/unique/%d/%d", i, rng.Int())
		}
		switch rng.IntN(4) {
		case 0:
			r.Props = []RowProp{{Key: "plan", Value: []string{"free", "pro", None}[rng.IntN(3)]}}
		case 1:
			amount := float64(rng.IntN(10_000)) / 100
			r.Props = []RowProp{{Key: "amount", Value: fmt.Sprint(amount), Num: amount, IsNum: true}, {Key: "plan", Value: "pro"}}
		case 2:
			r.Props = []RowProp{{Key: "amount", Value: "n/a"}}
		}
		rows[i] = r
	}
	return rows
}

// segmentsOf builds the views of rows, one segment per hour, appended in
// chunks as the engine appends what it reads.
func segmentsOf(t testing.TB, rows []Row) []SegmentView {
	t.Helper()
	byHour := map[int64][]Row{}
	for _, r := range rows {
		h := r.TS - r.TS%3_600_000
		byHour[h] = append(byHour[h], r)
	}
	hours := make([]int64, 0, len(byHour))
	for h := range byHour {
		hours = append(hours, h)
	}
	slices.Sort(hours)
	v := NewVisitorNumbers()
	var views []SegmentView
	for _, h := range hours {
		s := NewSegment(h, v)
		hr := byHour[h]
		for len(hr) > 0 {
			k := min(len(hr), 1+len(hr)/3)
			if err := s.Append(hr[:k]); err != nil {
				t.Fatal(err)
			}
			hr = hr[k:]
		}
		views = append(views, s.View())
	}
	return views
}

func TestSegmentRowsRoundTrip(t *testing.T) {
	rows := segmentRows(rand.New(rand.NewPCG(1, 1)), 70_000)
	// Ids past 65,535 in one column of one hour.
	for i := range 70_000 {
		rows = append(rows, Row{TS: now.UnixMilli() - 1, Goal: "pageview", Page: fmt.Sprintf("/wide/%d", i), Visitor: uint64(i)})
	}
	var back []Row
	for r := range SegmentRows(segmentsOf(t, rows)) {
		back = append(back, *r)
	}
	key := func(r Row) string {
		slices.SortFunc(r.Props, func(a, b RowProp) int { return strings.Compare(a.Key, b.Key) })
		b, _ := json.Marshal(r)
		return string(b)
	}
	var want, got []string
	for i := range rows {
		want = append(want, key(rows[i]))
	}
	for i := range back {
		got = append(got, key(back[i]))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Fatalf("rows rebuilt from segments differ: %d rows, %d back", len(want), len(got))
	}
}

func TestSplitViews(t *testing.T) {
	views := make([]SegmentView, 10)
	for i := range views {
		views[i].n = 100
	}
	for _, tc := range []struct{ n, minRows, parts int }{
		{1, 1, 1}, {2, 1, 2}, {3, 1, 3}, {4, 300, 3}, {2, 2_000, 1}, {20, 1, 10},
	} {
		parts := splitViews(views, tc.n, tc.minRows)
		rows := 0
		for _, p := range parts {
			for i := range p {
				rows += p[i].n
			}
		}
		if len(parts) != tc.parts || rows != 1_000 {
			t.Errorf("splitViews(10 views of 100 rows, %d, %d): %d parts of %d rows, want %d parts of 1000", tc.n, tc.minRows, len(parts), rows, tc.parts)
		}
	}
}

func TestSegmentAppendRefusesOtherHours(t *testing.T) {
	s := NewSegment(3_600_000, NewVisitorNumbers())
	for _, ts := range []int64{3_599_999, 7_200_000} {
		if err := s.Append([]Row{{TS: ts}}); err == nil {
			t.Errorf("Append of a row at %d to the hour at 3600000: no error", ts)
		}
	}
	if s.Len() != 0 {
		t.Errorf("Len %d after refused appends, want 0", s.Len())
	}
}

// TestExecuteSegmentsAgrees runs random queries through both executors:
// the columns must answer exactly as the rows.
func TestExecuteSegmentsAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	rows := segmentRows(rng, 20_000)
	// An hour without rows is an empty view, as the engine gives it.
	views := append([]SegmentView{{}}, segmentsOf(t, rows)...)
	if !scansInColumns(mustParse(t, "", now), views) {
		t.Fatal("views of one numbering (and an empty one) are not scanned in columns")
	}
	n := 400
	if testing.Short() {
		n = 150
	}
	asked := 0
	for asked < n {
		b := randomQuery(rng)
		q, err := Parse([]byte(b), now)
		if err != nil {
			continue // a combination the contract refuses
		}
		asked++
		want, werr := Execute(q, RowsOf(rows))
		got, gerr := ExecuteSegments(q, views)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("%s: rows err %v, segments err %v", b, werr, gerr)
		}
		if w, g := mustJSON(t, want), mustJSON(t, got); w != g {
			t.Fatalf("%s:\nrows     %s\nsegments %s", b, w, g)
		}
		if !scansInColumns(q, views) {
			continue
		}
		// In three goroutines, merged: the same answer.
		par, perr := executeSegments(q, views, 3, 1_000)
		if (werr != nil) != (perr != nil) {
			t.Fatalf("%s: rows err %v, 3 parts err %v", b, werr, perr)
		}
		if w, g := mustJSON(t, want), mustJSON(t, par); w != g {
			t.Fatalf("%s:\nrows    %s\n3 parts %s", b, w, g)
		}
	}
}

func randomQuery(rng *rand.Rand) string {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	metrics := []string{}
	for range 1 + rng.IntN(3) {
		metrics = append(metrics, pick("events", "pageviews", "visitors", "visitors", "percentage",
			"sum:props.amount", "avg:props.amount", "conversion_rate"))
	}
	dims := []string{}
	for range rng.IntN(3) {
		dims = append(dims, pick("event:page", "event:hostname", "event:goal", "event:props:plan",
			"event:props:amount", "visit:referrer", "visit:device", "time", "time:minute", "time:hour", "time:day"))
	}
	var filters []any
	for range rng.IntN(4) {
		filters = append(filters, randomFilter(rng, 0))
	}
	body := map[string]any{
		"site_id": "demo", "metrics": metrics, "dimensions": dims, "filters": filters,
		"timezone":   pick("UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns"),
		"date_range": pick("day", "7d", "24h", "30m"),
		"include":    map[string]bool{"total_rows": true},
	}
	if rng.IntN(3) == 0 {
		from := now.Add(-time.Duration(rng.Int64N(int64(60 * time.Hour))))
		body["date_range"] = []string{from.Format(time.RFC3339), from.Add(time.Duration(rng.Int64N(int64(30 * time.Hour)))).Format(time.RFC3339)}
	}
	b, _ := json.Marshal(body)
	return string(b)
}

func randomFilter(rng *rand.Rand, depth int) any {
	if depth < 2 && rng.IntN(4) == 0 {
		if rng.IntN(2) == 0 {
			return []any{"not", randomFilter(rng, depth+1)}
		}
		return []any{"or", []any{randomFilter(rng, depth+1), randomFilter(rng, depth+1)}}
	}
	dims := map[string][]string{
		"event:page": {"/p/1", "/p/12", "/P/3", "/unique"}, "event:hostname": {"shop.test", "docs"},
		"event:goal": {"pageview", "signup", "Purchase"}, "event:props:plan": {"pro", "free", None},
		"event:props:amount": {"n/a", "1", "(none)"}, "visit:referrer": {DirectNone, "www.google.com", "t.co", "news"},
		"visit:device": {"desktop", "Mobile"},
	}
	names := []string{"event:page", "event:hostname", "event:goal", "event:props:plan", "event:props:amount", "visit:referrer", "visit:device"}
	d := names[rng.IntN(len(names))]
	vals := dims[d]
	clauses := []string{vals[rng.IntN(len(vals))]}
	if rng.IntN(3) == 0 {
		clauses = append(clauses, vals[rng.IntN(len(vals))])
	}
	op := []string{"is", "is_not", "contains", "contains_not", "matches", "matches_not"}[rng.IntN(6)]
	f := []any{op, d, clauses}
	if rng.IntN(3) == 0 {
		f = append(f, map[string]bool{"case_sensitive": false})
	}
	return f
}

// TestExecuteSegmentsMaxGroups: the columns refuse a breakdown past the
// bound as the rows do.
func TestExecuteSegmentsMaxGroups(t *testing.T) {
	rows := segmentRows(rand.New(rand.NewPCG(3, 3)), 2_000)
	q := mustParse(t, `{"date_range":"7d","dimensions":["event:page"]}`, now)
	err := newColumnScan(q, 10).scan(segmentsOf(t, rows))
	var se *Error
	if !errors.As(err, &se) || se.Part != "dimensions" {
		t.Fatalf("err %v, want an *Error naming dimensions", err)
	}
}

// TestExecuteSegmentsMixedNumbering: views numbered by two VisitorNumbers
// (the engine started a site's numbering anew during a query) unite
// visitors by their hashes instead, with the same answer.
func TestExecuteSegmentsMixedNumbering(t *testing.T) {
	rows := segmentRows(rand.New(rand.NewPCG(4, 4)), 5_000)
	half := len(rows) / 2
	slices.SortFunc(rows, func(a, b Row) int { return int(a.TS - b.TS) })
	for half < len(rows) && rows[half].TS/3_600_000 == rows[half-1].TS/3_600_000 {
		half++
	}
	views := append(segmentsOf(t, rows[:half]), segmentsOf(t, rows[half:])...)
	q := mustParse(t, `{"metrics":["visitors","events"],"date_range":"7d","dimensions":["visit:device"]}`, now)
	if scansInColumns(q, views) {
		t.Fatal("views of two numberings are scanned in columns")
	}
	want, err := Execute(q, RowsOf(rows))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ExecuteSegments(q, views)
	if err != nil {
		t.Fatal(err)
	}
	if w, g := mustJSON(t, want), mustJSON(t, got); w != g {
		t.Fatalf("rows %s\nsegments %s", w, g)
	}
}
