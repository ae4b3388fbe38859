package systemtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"
)

// genEvent is an event the test sends, with what the server will derive
// from it, so the test computes the expected aggregates itself.
type genEvent struct {
	ID, Site, Type, URL, Ref, UID, Target string
	TS                                    int64
	UA                                    string
	// derived
	Path, RefHost, Device string
	Bot                   bool
}

type userAgent struct {
	UA, Device string
	Bot        bool
}

var userAgents = []userAgent{
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "desktop", false},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "mobile", false},
	{"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "tablet", false},
	{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", true},
}

var (
	paths    = []string{"/", "/pricing", "/docs", "/blog/a", "/blog/b", "/about", "/signup", "/docs/api"}
	refs     = []string{"", "https://news.example/item?id=1", "https://search.example/q", "https://social.example/p/2"}
	targets  = []string{"signup", "buy", "nav", "cta"}
	sites    = []string{"demo", "shop"}
	evTypes  = []string{"pageview", "pageview", "pageview", "click", "signup"}
	refHosts = map[string]string{"": "(none)", refs[1]: "news.example", refs[2]: "search.example", refs[3]: "social.example"}
)

func newGenEvent(r *rand.Rand, seq int, now time.Time, uaIdx int) genEvent {
	ua := userAgents[uaIdx]
	p := paths[r.IntN(len(paths))]
	ref := refs[r.IntN(len(refs))]
	e := genEvent{
		ID:      fmt.Sprintf("ev-%06d-%x", seq, r.Uint32()),
		Site:    sites[r.IntN(len(sites))],
		Type:    evTypes[r.IntN(len(evTypes))],
		URL:     "https://example.com" + p + "?utm=x",
		Ref:     ref,
		UID:     fmt.Sprintf("u-%03d", r.IntN(150)),
		TS:      now.Add(-time.Duration(r.Int64N(int64(55 * time.Minute)))).UnixMilli(),
		UA:      ua.UA,
		Path:    p,
		RefHost: refHosts[ref],
		Device:  ua.Device,
		Bot:     ua.Bot,
	}
	if e.Type == "click" {
		e.Target = targets[r.IntN(len(targets))]
	}
	return e
}

func (e genEvent) json() []byte {
	m := map[string]any{"id": e.ID, "site": e.Site, "type": e.Type, "ts": e.TS, "url": e.URL, "uid": e.UID}
	if e.Ref != "" {
		m["ref"] = e.Ref
	}
	if e.Target != "" {
		m["props"] = map[string]any{"target": e.Target}
	}
	b, _ := json.Marshal(m)
	return b
}

// invalidLines are bodies' lines the server must reject one by one.
var invalidLines = []string{
	`{"id":"x1","type":"pageview"}`,                                     // no site
	`{"id":"x2","site":"Bad Site","type":"pageview"}`,                   // bad site
	`{"id":"","site":"demo","type":"pageview"}`,                         // empty id
	`{"id":"x3","site":"demo","type":"pageview","props":{"a":{"b":1}}}`, // nested props
	`{"id":"x4","site":"demo","type":"pageview","ts":"yesterday"}`,      // wrong type
	`{"id":"x5","site":"demo",`,                                         // torn JSON
}

// truth accumulates the expected aggregates: the first accepted copy of
// each (site, id) counts once.
type truth struct {
	mu     sync.Mutex
	seen   map[string]bool
	counts map[string]int64               // key: site|metric|step|bucket|dim|value
	uniq   map[string]map[string]struct{} // key: site|metric|step|bucket
}

func newTruth() *truth {
	return &truth{seen: map[string]bool{}, counts: map[string]int64{}, uniq: map[string]map[string]struct{}{}}
}

var steps = []struct {
	Name  string
	Width int64
}{{"10s", 10_000}, {"1m", 60_000}, {"1h", 3_600_000}, {"1d", 86_400_000}}

// size is how many distinct events were acknowledged; safe while senders run.
func (t *truth) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.seen)
}

func (t *truth) add(e genEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := e.Site + "/" + e.ID
	if t.seen[k] {
		return
	}
	t.seen[k] = true
	for _, s := range steps {
		b := e.TS - e.TS%s.Width
		inc := func(metric, dim, value string) {
			t.counts[fmt.Sprintf("%s|%s|%s|%d|%s|%s", e.Site, metric, s.Name, b, dim, value)]++
		}
		if e.Bot {
			inc("bots", "", "")
			inc("bots", "type", e.Type)
			inc("bots", "device", e.Device)
			continue
		}
		inc("events", "", "")
		inc("events", "type", e.Type)
		switch e.Type {
		case "pageview":
			inc("pageviews", "", "")
			inc("pageviews", "path", e.Path)
			inc("pageviews", "referrer", e.RefHost)
			inc("pageviews", "device", e.Device)
		case "click":
			inc("clicks", "", "")
			inc("clicks", "path", e.Path)
			inc("clicks", "target", e.Target)
		}
		uk := fmt.Sprintf("%s|visitors|%s|%d", e.Site, s.Name, b)
		if t.uniq[uk] == nil {
			t.uniq[uk] = map[string]struct{}{}
		}
		t.uniq[uk][e.UID] = struct{}{}
	}
}

// queryResult is the /v1/query answer.
type queryResult struct {
	Metric string `json:"metric"`
	Step   string `json:"step"`
	Series []struct {
		Labels map[string]string `json:"labels"`
		Points [][2]float64      `json:"points"`
	} `json:"series"`
}

// countQueries lists the (metric, group_by) pairs to check.
var countQueries = []struct{ Metric, Dim string }{
	{"events", ""}, {"events", "type"},
	{"pageviews", ""}, {"pageviews", "path"}, {"pageviews", "referrer"}, {"pageviews", "device"},
	{"clicks", ""}, {"clicks", "path"}, {"clicks", "target"},
	{"bots", ""}, {"bots", "type"},
}

func queryValues(site, metric, step, dim string, from, to int64) url.Values {
	q := url.Values{"site": {site}, "metric": {metric}, "step": {step},
		"from": {fmt.Sprint(from)}, "to": {fmt.Sprint(to)}, "limit": {"100"}}
	if dim != "" {
		q.Set("group_by", dim)
	}
	return q
}

// diffCounts compares one query answer with the truth and describes the
// first differences ("" when equal).
func (t *truth) diffCounts(site, metric, step, dim string, from, to int64, got queryResult) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	have := map[string]int64{}
	for _, s := range got.Series {
		v := s.Labels[dim]
		for _, p := range s.Points {
			if p[1] != 0 {
				have[fmt.Sprintf("%d|%s", int64(p[0]), v)] += int64(p[1])
			}
		}
	}
	want := map[string]int64{}
	prefix := fmt.Sprintf("%s|%s|%s|", site, metric, step)
	for k, n := range t.counts {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		parts := strings.Split(k[len(prefix):], "|")
		var b int64
		fmt.Sscan(parts[0], &b)
		if parts[1] != dim || b < from || b > to {
			continue
		}
		want[fmt.Sprintf("%d|%s", b, parts[2])] = n
	}
	var diffs []string
	for k, n := range want {
		if have[k] != n {
			diffs = append(diffs, fmt.Sprintf("%s want %d got %d", k, n, have[k]))
		}
	}
	for k, n := range have {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s want 0 got %d", k, n))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("... %d more", len(diffs)-5))
	}
	return fmt.Sprintf("%s %s %s by %q: %s", site, metric, step, dim, strings.Join(diffs, "; "))
}

// diffUniques compares visitors per bucket within HyperLogLog's error.
func (t *truth) diffUniques(site, step string, from, to int64, got queryResult) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	have := map[int64]float64{}
	for _, s := range got.Series {
		for _, p := range s.Points {
			have[int64(p[0])] += p[1]
		}
	}
	prefix := fmt.Sprintf("%s|visitors|%s|", site, step)
	for k, set := range t.uniq {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		var b int64
		fmt.Sscan(k[len(prefix):], &b)
		if b < from || b > to {
			continue
		}
		want := float64(len(set))
		if d := have[b] - want; d > 0.03*want+1 || d < -(0.03*want+1) {
			return fmt.Sprintf("%s visitors %s bucket %d: want %v got %v", site, step, b, want, have[b])
		}
	}
	return ""
}
