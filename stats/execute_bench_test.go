package stats

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// benchRows is a day of a normal site (docs/redis-keys.md, "Memory per
// site-day"): 110,000 events, 100 paths, 20 referrers, 4 devices, 10
// goals, 5,000 visitors, a plan prop on every event.
func benchRows() []Row {
	r := rand.New(rand.NewPCG(1, 2))
	day := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC).UnixMilli()
	devices := []string{"desktop", "mobile", "tablet", "bot"}
	plans := []string{"free", "pro", "team"}
	rows := make([]Row, 110_000)
	for i := range rows {
		goal := "pageview"
		if g := r.IntN(10); g > 6 {
			goal = "goal" + strconv.Itoa(g)
		}
		rows[i] = Row{
			TS: day + r.Int64N(86_400_000), Goal: goal, Page: "/page/" + strconv.Itoa(r.IntN(100)),
			Hostname: "shop.test", Referrer: "ref" + strconv.Itoa(r.IntN(20)) + ".example", Device: devices[r.IntN(4)],
			Visitor: uint64(r.IntN(5000)) + 1, Props: []RowProp{{Key: "plan", Value: plans[r.IntN(3)]}},
		}
	}
	return rows
}

// benchQueries are BenchmarkExecute's queries.
var benchQueries = []struct{ name, body string }{
	{"visitors_pageviews", `{"metrics":["visitors","pageviews"],"date_range":"day"}`},
	{"page_by_referrer_filter", `{"metrics":["pageviews","visitors"],"date_range":"day","dimensions":["event:page"],"filters":[["contains","visit:referrer",["ref1"]]]}`},
	{"goal_by_hour_plan", `{"metrics":["events","visitors"],"date_range":"day","dimensions":["event:goal","time:hour"],"filters":[["is","event:props:plan",["pro"]]]}`},
}

// BenchmarkExecute scans a day of a normal site per query, as rows and as
// segments (ExecuteSegments, one per hour); ns/row is the executor's cost
// per event scanned.
func BenchmarkExecute(b *testing.B) {
	rows := benchRows()
	views := segmentsOf(b, rows)
	for _, bc := range benchQueries {
		q, err := Parse([]byte(`{"site_id":"shop",`+bc.body[1:]), time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name+"/rows", func(b *testing.B) {
			for b.Loop() {
				if _, err := Execute(q, RowsOf(rows)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rows)), "ns/row")
		})
		b.Run(bc.name+"/segments", func(b *testing.B) {
			for b.Loop() {
				if _, err := ExecuteSegments(q, views); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rows)), "ns/row")
		})
	}
}
