package stats

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// hoursOf serves the views of rows by hour, as the engine does: an empty
// view for an hour without rows.
func hoursOf(t testing.TB, rows []Row) HourViews {
	views := segmentsOf(t, rows)
	return func(hours []int64) ([]SegmentView, error) {
		out := make([]SegmentView, len(hours))
		for i, h := range hours {
			for _, v := range views {
				if v.hour == h {
					out[i] = v
				}
			}
		}
		return out, nil
	}
}

func visitsAnswer(t testing.TB, body string, rows []Row) (Answer, error) {
	t.Helper()
	q, err := Parse([]byte(`{"site_id":"shop",`+body[1:]), now)
	if err != nil {
		t.Fatalf("parse %s: %v", body, err)
	}
	return ExecuteVisits(q, now, hoursOf(t, rows))
}

// at is a row time: minutes (and seconds) after 10:00 of now's day.
func at(min float64) int64 {
	return time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixMilli() + int64(min*60_000)
}

func pv(visitor uint64, ts int64, page string) Row {
	return Row{TS: ts, Goal: "pageview", Page: page, Visitor: visitor, Device: "desktop"}
}

// TestVisits: the visit rules on journeys small enough to count by hand.
func TestVisits(t *testing.T) {
	google := func(r Row) Row {
		r.Source, r.UTMSource, r.Browser, r.Country = "Google", "ads", "Firefox", "DE"
		return r
	}
	signup := func(r Row) Row { r.Goal = "signup"; return r }
	rows := []Row{
		// Visitor 1: a visit from Google of three pageviews, 10 minutes;
		// then, exactly 30 minutes after, a new visit that bounces.
		google(pv(1, at(0), "/")), pv(1, at(4), "/pricing"), pv(1, at(10), "/docs"),
		pv(1, at(40), "/blog"),
		// Visitor 2: 29:59.999 between events is one visit, ending in a
		// signup after its last pageview (exit page: /pricing).
		pv(2, at(5), "/pricing"), pv(2, at(5+30-1.0/60_000), "/"), signup(pv(2, at(36), "/thanks")),
		// Visitor 3: a visit of custom events only (no pageview: not a
		// bounce; entry and exit are its first and last event's page).
		signup(pv(3, at(20), "/a")), signup(pv(3, at(21), "/b")),
		// An event without a visitor is a visit of its own.
		pv(0, at(50), "/"),
		// Visitor 4 began at 07:50 from Google, with an event every 25
		// minutes since: its events in the range take that source, but
		// the visit is not the range's.
		google(pv(4, at(-130), "/old")), pv(4, at(-105), "/x"), pv(4, at(-80), "/x"), pv(4, at(-55), "/x"),
		pv(4, at(-30), "/x"), pv(4, at(-5), "/x"), pv(4, at(15), "/y"),
	}
	const rng = `"date_range":["2026-12-07T10:00:00Z","2026-12-07T11:00:00Z"]`
	tests := []struct{ body, want string }{
		{`{"metrics":["visits","bounce_rate","visit_duration","views_per_visit","pageviews","visitors"],` + rng + `}`,
			// 5 visits: 1a (3 pv, 600 s), 1b (bounce, 0 s), 2 (2 pv, 1860 s: 10:05 to 10:36), 3 (0 pv, 60 s), anonymous (bounce)
			// bounce 2/5 = 40; duration (600+0+1860+60+0)/5 = 504; views 7/5 = 1.4;
			// pageviews and visitors count visitor 4's /y too, visits do not
			`[{"dimensions":[],"metrics":[5,40,504,1.4,8,4]}]`},
		{`{"metrics":["visits","visitors","pageviews"],` + rng + `,"dimensions":["visit:source"]}`,
			`[{"dimensions":["Direct / None"],"metrics":[4,3,4]},{"dimensions":["Google"],"metrics":[1,2,4]}]`},
		{`{"metrics":["visits"],` + rng + `,"dimensions":["visit:entry_page","visit:exit_page"],"order_by":[["visit:entry_page","asc"],["visit:exit_page","asc"]]}`,
			`[{"dimensions":["/","/"],"metrics":[1]},{"dimensions":["/","/docs"],"metrics":[1]},{"dimensions":["/a","/b"],"metrics":[1]},` +
				`{"dimensions":["/blog","/blog"],"metrics":[1]},{"dimensions":["/pricing","/"],"metrics":[1]}]`},
		// A visit counts when any of its events matches the filter.
		{`{"metrics":["visits","bounce_rate","pageviews"],` + rng + `,"filters":[["is","event:page",["/docs"]]]}`,
			`[{"dimensions":[],"metrics":[1,0,1]}]`},
		// A visit's country is its first event's; an event is counted by
		// its own (the visit from Google's later pageviews have none).
		{`{"metrics":["visits","visitors"],` + rng + `,"dimensions":["visit:utm_source","visit:country"]}`,
			`[{"dimensions":["(not set)","(not set)"],"metrics":[4,3]},{"dimensions":["ads","DE"],"metrics":[1,1]},{"dimensions":["ads","(not set)"],"metrics":[0,2]}]`},
		{`{"metrics":["pageviews"],` + rng + `,"filters":[["is","visit:source",["Google"]]]}`,
			`[{"dimensions":[],"metrics":[4]}]`},
		{`{"metrics":["visits"],` + rng + `,"dimensions":["time:minute"],"filters":[["is","visit:entry_page",["/"]]]}`,
			`[{"dimensions":["2026-12-07 10:00:00"],"metrics":[1]},{"dimensions":["2026-12-07 10:50:00"],"metrics":[1]}]`},
		// conversion_rate is counted over rows rebuilt with their visit's values.
		{`{"metrics":["visitors","conversion_rate"],` + rng + `,"dimensions":["visit:source"],"filters":[["is","event:goal",["signup"]]]}`,
			`[{"dimensions":["Direct / None"],"metrics":[2,66.67]}]`},
		// A range ending at 10:30 reads visits up to its end: visitor 2's
		// is one pageview long there.
		{`{"metrics":["visits","visit_duration","bounce_rate"],"date_range":["2026-12-07T10:00:00Z","2026-12-07T10:30:00Z"]}`,
			`[{"dimensions":[],"metrics":[3,220,33]}]`},
	}
	for _, tt := range tests {
		a, err := visitsAnswer(t, tt.body, rows)
		if err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		if got := mustJSON(t, a.Results); got != tt.want {
			t.Errorf("%s\n got %s\nwant %s", tt.body, got, tt.want)
		}
	}
}

// TestVisitsRefuse: a visit metric broken down by an event dimension is
// an *Error naming the dimension.
func TestVisitsRefuse(t *testing.T) {
	for _, b := range []string{
		`{"metrics":["visits"],"date_range":"day","dimensions":["event:page"]}`,
		`{"metrics":["visitors","bounce_rate"],"date_range":"day","dimensions":["visit:source","event:page"]}`,
	} {
		_, err := visitsAnswer(t, b, nil)
		var e *Error
		if !errors.As(err, &e) || !strings.HasPrefix(e.Part, "dimensions[") {
			t.Errorf("%s: %v, want an *Error of a dimension", b, err)
		}
	}
}

// journeyRows are the events of visitors whose gaps straddle the visit
// gap (29:59.999, exactly 30:00, 30:00.001), with same-millisecond events
// and events without a visitor, over the 8 hours before now.
func journeyRows(rng *rand.Rand, visitors int) []Row {
	start := now.Add(-8 * time.Hour).UnixMilli()
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	gaps := []int64{0, 1, 1_000, 60_000, 5 * 60_000, visitGapMs - 1, visitGapMs, visitGapMs + 1, 2 * 3_600_000}
	var rows []Row
	for v := 1; v <= visitors; v++ {
		ts := start + rng.Int64N(3_600_000)
		for ts < now.UnixMilli() {
			r := Row{TS: ts, Goal: pick("pageview", "pageview", "signup"), Page: pick("/", "/a", "/b", "/c"),
				Visitor: uint64(v), Device: pick("desktop", "mobile"), Source: pick("", "Google", "Hacker News"),
				UTMSource: pick("", "", "news"), UTMCampaign: pick("", "x"), Browser: pick("Firefox", "Chrome", ""),
				OS: pick("Linux", "iOS"), Country: pick("DE", "FR", ""), Hostname: "shop.test", Referrer: pick("", "t.co")}
			if rng.IntN(20) == 0 {
				r.Visitor = 0
			}
			rows = append(rows, r)
			ts += gaps[rng.IntN(len(gaps))]
		}
	}
	return rows
}

// TestVisitsAgree: ExecuteVisits over segments, whatever order the rows
// were appended in, answers as a plain count of the visit rules over the
// rows does.
func TestVisitsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	rows := journeyRows(rng, 60)
	shuffled := slices.Clone(rows)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	n := 300
	if testing.Short() {
		n = 100
	}
	for asked := 0; asked < n; {
		b := randomVisitQuery(rng)
		q, err := Parse([]byte(b), now)
		if err != nil || q.checkVisits() != nil {
			continue // a combination the contract refuses
		}
		asked++
		want := plainVisits(t, q, rows)
		for _, in := range [][]Row{rows, shuffled} {
			a, err := ExecuteVisits(q, now, hoursOf(t, in))
			if err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			got := map[string]string{}
			for _, r := range a.Results {
				got[strings.Join(r.Dimensions, "|")] = mustJSON(t, r.Metrics)
			}
			if w, g := mustJSON(t, want), mustJSON(t, got); w != g {
				t.Fatalf("%s:\nplain   %s\nvisits  %s", b, w, g)
			}
		}
	}
}

func randomVisitQuery(rng *rand.Rand) string {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	metrics := []string{}
	for range 1 + rng.IntN(3) {
		metrics = append(metrics, pick("events", "pageviews", "visitors", "visits", "visits", "bounce_rate",
			"visit_duration", "views_per_visit"))
	}
	dims := []string{}
	for range rng.IntN(3) {
		dims = append(dims, pick("event:page", "visit:source", "visit:entry_page", "visit:exit_page", "visit:utm_source",
			"visit:browser", "visit:country", "visit:device", "time:hour", "time"))
	}
	var filters []any
	for range rng.IntN(3) {
		d := pick("event:page", "event:goal", "visit:source", "visit:entry_page", "visit:exit_page", "visit:country", "visit:utm_campaign")
		v := map[string][]string{"event:page": {"/a", "/"}, "event:goal": {"signup"}, "visit:source": {"Google", DirectNone},
			"visit:entry_page": {"/b"}, "visit:exit_page": {"/c", "/"}, "visit:country": {"DE", NotSet}, "visit:utm_campaign": {"x", NotSet}}[d]
		f := []any{pick("is", "is_not", "contains"), d, []string{v[rng.IntN(len(v))]}}
		if rng.IntN(4) == 0 {
			f = []any{"not", f}
		}
		filters = append(filters, f)
	}
	h := func() time.Time {
		return now.Add(-time.Duration(rng.Int64N(int64(9 * time.Hour)))).Truncate(time.Minute)
	}
	a, z := h(), h()
	if z.Before(a) {
		a, z = z, a
	}
	var dr any = []string{a.Format(time.RFC3339), z.Add(time.Minute).Format(time.RFC3339)}
	if rng.IntN(4) == 0 {
		dr = pick("day", "realtime", "24h")
	}
	body := map[string]any{"site_id": "shop", "metrics": metrics, "dimensions": dims, "filters": filters,
		"date_range": dr, "timezone": pick("UTC", "Asia/Kolkata"), "pagination": map[string]int{"limit": 10_000}}
	b, _ := json.Marshal(body)
	return string(b)
}

// plainVisits counts q over rows by the visit rules, straightforwardly:
// each visitor's rows sorted, cut at every gap of 30 minutes or more.
// The answer is keyed by the labels joined by "|".
func plainVisits(t testing.TB, q Query, rows []Row) map[string]string {
	end := min(q.Range.To.UnixMilli(), now.UnixMilli()+1)
	type visit struct{ rows []*Row }
	byVisitor := map[uint64][]*Row{}
	var visits []*visit
	for i := range rows {
		if rows[i].TS >= end {
			continue
		}
		if rows[i].Visitor == 0 {
			visits = append(visits, &visit{rows: []*Row{&rows[i]}})
			continue
		}
		byVisitor[rows[i].Visitor] = append(byVisitor[rows[i].Visitor], &rows[i])
	}
	for _, rs := range byVisitor {
		slices.SortFunc(rs, func(a, b *Row) int {
			ta, tb := textValues(a), textValues(b)
			return cmp.Or(cmp.Compare(a.TS, b.TS), slices.Compare(ta[:], tb[:]))
		})
		for i, r := range rs {
			if i == 0 || r.TS-rs[i-1].TS >= visitGapMs {
				visits = append(visits, &visit{})
			}
			v := visits[len(visits)-1]
			v.rows = append(v.rows, r)
		}
	}
	visitOf := map[*Row]*visit{}
	for _, v := range visits {
		for _, r := range v.rows {
			visitOf[r] = v
		}
	}
	pageOf := func(v *visit, last bool) string {
		var pvs []*Row
		for _, r := range v.rows {
			if r.Goal == "pageview" {
				pvs = append(pvs, r)
			}
		}
		if len(pvs) == 0 {
			pvs = v.rows
		}
		if last {
			return pvs[len(pvs)-1].Page
		}
		return pvs[0].Page
	}
	orNot := func(s string) string { return cmp.Or(s, NotSet) }
	get := func(r *Row, v *visit, d Dimension) string {
		first := v.rows[0]
		switch d.Kind {
		case Page:
			return r.Page
		case Goal:
			return r.Goal
		case Source:
			return cmp.Or(first.Source, DirectNone)
		case EntryPage:
			return pageOf(v, false)
		case ExitPage:
			return pageOf(v, true)
		case UTMSource:
			return orNot(first.UTMSource)
		case UTMCampaign:
			return orNot(first.UTMCampaign)
		case Browser:
			return orNot(r.Browser)
		case Country:
			return orNot(r.Country)
		case Device:
			return r.Device
		}
		t.Fatalf("dimension %v", d)
		return ""
	}
	grain, _ := q.TimeGrain()
	labels := func(r *Row, v *visit, ts int64) string {
		var l []string
		for _, d := range q.Dimensions {
			if d.IsTime() {
				l = append(l, q.Range.Label(time.UnixMilli(ts), grain))
			} else {
				l = append(l, get(r, v, d))
			}
		}
		return strings.Join(l, "|")
	}
	type acc struct {
		events, pageviews        int64
		visitors                 map[uint64]bool
		visits, bounces, vpv, ms int64
	}
	groups := map[string]*acc{}
	group := func(k string) *acc {
		if groups[k] == nil {
			groups[k] = &acc{visitors: map[uint64]bool{}}
		}
		return groups[k]
	}
	from, to := q.Range.From.UnixMilli(), q.Range.To.UnixMilli()
	events := slices.ContainsFunc(q.Metrics, func(m Metric) bool { return m.Level() == EventLevel })
	for _, v := range visits {
		matched := false
		for _, r := range v.rows {
			if !Match(q.Filter, func(d Dimension) string { return get(r, v, d) }) {
				continue
			}
			matched = true
			if r.TS < from || r.TS >= to || !events {
				continue
			}
			g := group(labels(r, v, r.TS))
			g.events++
			if r.Goal == "pageview" {
				g.pageviews++
			}
			if r.Visitor != 0 {
				g.visitors[r.Visitor] = true
			}
		}
		first := v.rows[0]
		if !matched || first.TS < from || first.TS >= to {
			continue
		}
		if !slices.ContainsFunc(q.Metrics, func(m Metric) bool { return m.Level() == VisitLevel }) {
			continue
		}
		// A visit's event-level values (browser, country, ...) are its first event's.
		g := group(labels(first, v, first.TS))
		g.visits++
		pvs := int64(0)
		for _, r := range v.rows {
			if r.Goal == "pageview" {
				pvs++
			}
		}
		if pvs == 1 {
			g.bounces++
		}
		g.vpv += pvs
		g.ms += v.rows[len(v.rows)-1].TS - first.TS
	}
	out := map[string]string{}
	for k, g := range groups {
		var vals []any
		for _, m := range q.Metrics {
			n := float64(max(g.visits, 1))
			switch m.Kind {
			case Events:
				vals = append(vals, g.events)
			case Pageviews:
				vals = append(vals, g.pageviews)
			case Visitors:
				vals = append(vals, len(g.visitors))
			case Visits:
				vals = append(vals, g.visits)
			case BounceRate:
				vals = append(vals, int64(math.Round(100*float64(g.bounces)/n)))
			case VisitDuration:
				vals = append(vals, int64(math.Round(float64(g.ms)/1000/n)))
			case ViewsPerVisit:
				vals = append(vals, math.Round(float64(g.vpv)/n*100)/100)
			default:
				t.Fatalf("metric %v", m)
			}
		}
		out[k] = fmt.Sprint(mustJSON(t, vals))
	}
	return out
}
