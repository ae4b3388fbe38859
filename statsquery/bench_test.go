package statsquery

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/factrow"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/stats"
)

// refSite is issue 12's reference site: a day has 1,000,000 events over
// 1,000 paths (Zipf), 100 referrers, 4 devices, pageviews and 3 goals, a
// plan prop of 5 values and 100,000 visitors.
type refSite struct {
	rng   *rand.Rand
	zipf  *rand.Zipf
	paths []string
	refs  []string
}

func newRefSite(seed uint64) *refSite {
	rng := rand.New(rand.NewPCG(seed, 7))
	s := &refSite{rng: rng, zipf: rand.NewZipf(rng, 1.1, 4, 999)}
	for i := range 1000 {
		s.paths = append(s.paths, fmt.Sprintf("/docs/section-%02d/article-%03d", i%17, i))
	}
	for i := range 100 {
		s.refs = append(s.refs, fmt.Sprintf("ref%02d.example.com", i))
	}
	return s
}

var (
	refGoals   = []string{"pageview", "pageview", "pageview", "pageview", "pageview", "pageview", "pageview", "signup", "download", "purchase"}
	refDevices = []string{"desktop", "mobile", "tablet", "unknown"}
	refPlans   = []string{"free", "starter", "pro", "team", "enterprise"}
)

// row is one event at ts of day d.
func (s *refSite) row(ts int64, d int) stats.Row {
	r := stats.Row{
		TS: ts, Goal: refGoals[s.rng.IntN(len(refGoals))], Page: s.paths[s.zipf.Uint64()],
		Hostname: "shop.example", Device: refDevices[s.rng.IntN(4)],
		Visitor: factrow.VisitorHash(strconv.Itoa(d*100_000 + s.rng.IntN(100_000))),
		Props:   []stats.RowProp{{Key: "plan", Value: refPlans[s.rng.IntN(5)]}},
	}
	if s.rng.IntN(3) > 0 {
		r.Referrer = s.refs[s.rng.IntN(100)]
		r.Source = refSources[s.rng.IntN(len(refSources))]
	}
	if s.rng.IntN(10) == 0 {
		r.UTMSource, r.UTMCampaign = "newsletter", refPlans[s.rng.IntN(5)]
	}
	r.Browser, r.OS, r.Country = refBrowsers[s.rng.IntN(len(refBrowsers))], refOSes[s.rng.IntN(len(refOSes))], refCountries[s.rng.IntN(len(refCountries))]
	return r
}

var (
	refSources   = []string{"Google", "Google", "Bing", "DuckDuckGo", "Hacker News", "Reddit", "Twitter", "GitHub", "ref00.example.com"}
	refBrowsers  = []string{"Chrome", "Chrome", "Safari", "Firefox", "Edge", "Samsung Internet"}
	refOSes      = []string{"Windows", "Mac", "iOS", "Android", "GNU/Linux"}
	refCountries = []string{"US", "DE", "GB", "FR", "IN", "BR", "JP", "CA", "NL", "PL", ""}
)

// loadDays applies days of the reference site, ending at the hour of now,
// one commit per hour, as the aggregator would.
func loadDays(b *testing.B, st *redisagg.Store, s *refSite, now time.Time, days int) {
	const perDay = 1_000_000
	end := factrow.HourOf(now.UnixMilli())
	start := end - int64(days)*24*factrow.HourMs
	for i, h := 0, start; h < end; i, h = i+1, h+factrow.HourMs {
		var blob []byte
		d := int((h - start) / (24 * factrow.HourMs))
		for range perDay / 24 {
			r := s.row(h+s.rng.Int64N(factrow.HourMs), d)
			blob = factrow.Append(blob, &r, h)
		}
		seq := strconv.Itoa(i + 1)
		c := &metric.Commit{Shard: "load", First: seq, Last: seq, Pos: metric.Position{Seq: seq},
			Update: &metric.Update{Rows: map[metric.RowKey][]byte{{Site: "ref", Hour: h}: blob}}}
		if err := st.Apply(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnswer is the Stats API's latency on the reference site under
// 10,000 events/s of ingest (applied as commits of 1,000 rows every 100 ms
// through the store, as the aggregator applies them): a 24-hour range and
// a 30-day range, each with one filter and one breakdown, through a warm
// engine (the second query on of a node). PULSE_BENCH_DAYS (default 1)
// sets how many days are loaded; the 30-day query needs 30 (about 2.5 GB
// in Redis and 5 GB of cache).
//
//	PULSE_BENCH_DAYS=30 go test -run '^$' -bench BenchmarkAnswer -benchtime 20x -timeout 60m ./statsquery
func BenchmarkAnswer(b *testing.B) {
	days := 1
	if v, err := strconv.Atoi(os.Getenv("PULSE_BENCH_DAYS")); err == nil && v > 0 {
		days = v
	}
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	now := time.Now()
	cat, _ := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	st := redisagg.New(rdb, cat, redisagg.Config{})
	s := newRefSite(1)
	loadDays(b, st, s, now, days)
	used := usedMemory(b, rdb)
	b.Logf("%d days loaded: Redis used_memory %.1f MB (%.1f MB a day)", days, float64(used)/1e6, float64(used)/1e6/float64(days))

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go ingest(ctx, st, s, days)

	e := New(st, Config{CacheBytes: int64(days) * 60 << 20}) // the rows in columns and the visitor numbers, with room
	for _, tc := range []struct {
		name, body string
		days       int
	}{
		{"24h", `{"site_id":"ref","metrics":["visitors","pageviews"],"date_range":"24h","dimensions":["event:page"],"filters":[["is","visit:device",["mobile"]]]}`, 1},
		{"30d", `{"site_id":"ref","metrics":["visitors","pageviews"],"date_range":"30d","dimensions":["event:page"],"filters":[["is","visit:device",["mobile"]]]}`, 30},
		// The dashboard's top stats, and its sources panel filtered on a country.
		{"24h-visits", `{"site_id":"ref","metrics":["visitors","visits","pageviews","bounce_rate","visit_duration"],"date_range":"24h"}`, 1},
		{"24h-sources", `{"site_id":"ref","metrics":["visitors","visits","bounce_rate"],"date_range":"24h","dimensions":["visit:source"],"filters":[["is","visit:country",["DE"]]]}`, 1},
		{"30d-visits", `{"site_id":"ref","metrics":["visitors","visits","pageviews","bounce_rate","visit_duration"],"date_range":"30d"}`, 30},
		{"30d-sources", `{"site_id":"ref","metrics":["visitors","visits","bounce_rate"],"date_range":"30d","dimensions":["visit:source"],"filters":[["is","visit:country",["DE"]]]}`, 30},
	} {
		if tc.days > days {
			continue
		}
		b.Run(tc.name, func(b *testing.B) {
			q, err := stats.Parse([]byte(tc.body), time.Now())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.Answer(ctx, q); err != nil { // warm
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				if _, err := e.Answer(ctx, q); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(e.CachedBytes())/1e6, "cache-MB")
		})
	}
}

// ingest applies 10,000 rows a second to the current hour until ctx ends.
func ingest(ctx context.Context, st *redisagg.Store, s *refSite, days int) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for seq := 1; ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now().UnixMilli()
		h := factrow.HourOf(now)
		var blob []byte
		for range 1000 {
			r := s.row(now, days)
			blob = factrow.Append(blob, &r, h)
		}
		c := &metric.Commit{Shard: "bench", First: strconv.Itoa(seq), Last: strconv.Itoa(seq),
			Pos: metric.Position{Seq: strconv.Itoa(seq)}, Update: &metric.Update{Rows: map[metric.RowKey][]byte{{Site: "ref", Hour: h}: blob}}}
		if err := st.Apply(ctx, c); err != nil {
			return
		}
	}
}

func usedMemory(b *testing.B, rdb *redis.Client) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
