package querystudy

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/pulsehq/pulse/event"
)

// shape is a site's traffic per day, as docs/queries.md "Workload" states it.
type shape struct {
	name           string
	eventsPerDay   int
	visitorsPerDay int
}

func normalSite() shape { return shape{"normal", 110_000, 5_000} }
func bigSite() shape    { return shape{"big", 1_100_000, 50_000} }

// studyStart is the first day of every generated range (UTC midnight).
var studyStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

const (
	nPaths     = 100
	nDevices   = 4
	retryShare = 0.005 // client retries: the archive keeps them, the aggregates count once
)

var (
	referrers = []string{"", "www.google.com", "t.co", "news.ycombinator.com", "www.bing.com",
		"duckduckgo.com", "www.google.de", "github.com", "www.reddit.com", "lobste.rs",
		"www.facebook.com", "www.linkedin.com", "dev.to", "medium.com", "stackoverflow.com",
		"www.youtube.com", "search.brave.com", "www.ecosia.org", "old.reddit.com", "news.google.com"}
	devices = []string{"desktop", "mobile", "tablet", "unknown"}
	goals   = []string{"pageview", "click", "signup", "download", "outbound", "share", "search", "video", "scroll", "purchase"}
	plans   = []string{"free", "pro", "team"}
)

func pathOf(i int) string { return fmt.Sprintf("/docs/section-%02d/article-%03d", i%17, i) }

// visitorHash is the 64-bit key every prototype keeps for a uid.
func visitorHash(uid string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(uid))
	return h.Sum64()
}

type visitor struct {
	uid    string
	device string
	ref    string
	plan   string // "" for an anonymous visitor: no plan prop
	starts []int64
}

// genDay returns day d of site s (d = 0 is studyStart), sorted by ts, with
// retryShare client retries (same id, same event) mixed in. It is a pure
// function of (seed, s, d).
func genDay(seed uint64, s shape, d int) []event.Event {
	rng := rand.New(rand.NewPCG(seed, uint64(d)*7919+uint64(s.eventsPerDay)))
	day := studyStart.Add(time.Duration(d) * 24 * time.Hour).UnixMilli()
	pathZipf := rand.NewZipf(rng, 1.1, 1, nPaths-1)
	refZipf := rand.NewZipf(rng, 1.3, 1, uint64(len(referrers)-1))
	vs := make([]visitor, s.visitorsPerDay)
	for i := range vs {
		v := &vs[i]
		if i%2 == 0 { // half return from a pool of 2x a day's visitors
			v.uid = fmt.Sprintf("r%d", rng.IntN(2*s.visitorsPerDay))
		} else {
			v.uid = fmt.Sprintf("d%d-%d", d, i)
		}
		hv := visitorHash(v.uid)
		v.device = devices[hv%nDevices]
		v.ref = referrers[refZipf.Uint64()]
		if p := hv >> 8 % 10; p < 4 {
			v.plan = plans[p%3]
		}
		for range 1 + rng.IntN(3) {
			v.starts = append(v.starts, day+rng.Int64N(24*3600*1000))
		}
	}
	evs := make([]event.Event, 0, s.eventsPerDay+s.eventsPerDay/100)
	last := make([]int64, s.visitorsPerDay*3) // last ts per (visitor, session)
	for i := range s.eventsPerDay {
		vi := rng.IntN(len(vs))
		v := &vs[vi]
		si := rng.IntN(len(v.starts))
		k := vi*3 + si
		if last[k] == 0 {
			last[k] = v.starts[si]
		}
		last[k] += 5_000 + rng.Int64N(115_000)
		ev := event.Event{
			ID: fmt.Sprintf("e%02d-%07d", d, i), Site: "demo", TS: last[k], RT: last[k] + rng.Int64N(2000),
			UID: v.uid, Path: pathOf(int(pathZipf.Uint64())), RefHost: v.ref, Device: v.device,
		}
		ev.URL = "https://www.example.com" + ev.Path
		ev.Type = "pageview"
		if r := rng.IntN(110); r >= 100 { // 100k pageviews, 10k others of 110k
			ev.Type = goals[1+rng.IntN(len(goals)-1)]
		}
		if rng.Float64() < 0.02 {
			ev.Type = "purchase"
		}
		if v.plan != "" || ev.Type == "purchase" {
			ev.Props = map[string]any{}
			if v.plan != "" {
				ev.Props["plan"] = v.plan
			}
			if ev.Type == "purchase" {
				ev.Props["price"] = float64(1+rng.IntN(20000)) / 100
			}
		}
		evs = append(evs, ev)
		if rng.Float64() < retryShare {
			evs = append(evs, ev)
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].TS < evs[j].TS })
	return evs
}
