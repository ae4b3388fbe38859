package systemtest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pulsehq/pulse/internal/redistest"
)

// The visits test's site and the semantics it checks (../shared/DESIGN.md
// "Contract v2", the visits of issue 13): a gap of 30 minutes or more
// between two events of a visitor starts a new visit; unknown values are
// Plausible's "(not set)", a visit without a source is "Direct / None".
const (
	journeySite = "journeys"
	journeySeed = 13
	visitGapMs  = 30 * 60 * 1000
	notSetLabel = "(not set)"
	directNone  = "Direct / None"
)

// TestVisitorJourneys sends visitor journeys through the built binary:
// real User-Agents and client addresses of several countries (through the
// trusted proxy header), landing pages reached from search engines,
// social networks, the site itself, nowhere and campaign links; several
// visits per visitor, split by gaps below, at and above 30 minutes, with
// bounces, multi-page visits and custom events; visitors with a uid and
// cookieless ones; a few delivered late and newest first, as an offline
// tracker does; some requests also carry events of another site. Requests
// are retried with the same ids, and the server is killed with SIGKILL in
// the middle of the sending and restarted. Every Stats API answer (visits,
// bounce rate, duration, views per visit, entry and exit pages, sources,
// UTM tags, browsers, OSes, countries, devices, hours; over all the
// journeys and over two hours that cut visits; filtered on the visit's
// source, entry page, country, a goal and a page) must equal what the test
// computes from the journeys itself (visitors within HyperLogLog error
// only when the answer says they are approximate), and stay the same after
// the aggregates are rebuilt from the archive by a replay. The same
// queries, subscribed live from the restart on, must fold to the same
// answers.
func TestVisitorJourneys(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server")
	}
	for _, tc := range []struct {
		name  string
		redis func(t *testing.T) string
	}{
		{"redis-server", func(t *testing.T) string { return redistest.Start(t).URL() }},
		{"embedded", func(*testing.T) string { return "embedded" }},
	} {
		t.Run(tc.name, func(t *testing.T) { runVisitorJourneys(t, tc.redis(t)) })
	}
}

// runVisitorJourneys runs the test against a server on redisURL: with a
// real redis-server the aggregator resumes from the positions committed
// with the aggregates; embedded, it rebuilds them from the stream at each
// start.
func runVisitorJourneys(t *testing.T, redisURL string) {
	began := time.Now()
	fx := loadVisitFixture(t)
	base := began.Add(-9 * time.Hour).Truncate(time.Hour)
	rg := journeyRanges{
		full: jRange{"full", base, began.Truncate(time.Hour).Add(time.Hour)},
		cut:  jRange{"cut", base.Add(3 * time.Hour), base.Add(5 * time.Hour)},
	}
	j := genJourneys(fx, rand.New(rand.NewPCG(journeySeed, 1)), base, began.Add(-5*time.Minute), rg)
	reqs := journeyRequests(j, rand.New(rand.NewPCG(journeySeed, 2)))
	t.Logf("seed %d, %s", journeySeed, j.summary(rg.full))

	s := newServer(t, "--redis", redisURL, "--trusted-proxies", trustedLoopbackGW,
		"--archive-max-age", "200ms", "--rate-ip", "-1", "--rate-site", "-1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	queries := journeyQueries(rg)
	var subs *statsLive
	led := sendJourneys(ctx, t, s, j, reqs, func() { subs = subscribeJourneyQueries(ctx, t, s, queries) })
	waitJourneysApplied(ctx, t, s, j, rg.full)

	live := checkJourneyQueries(ctx, t, s, j, queries)
	checkJourneyRefusals(ctx, t, s, rg.full)
	if out, err := s.pulse(ctx, "replay", "--namespace", "v2", "--promote"); err != nil {
		nsCtx, nsCancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer nsCancel()
		ns, nsErr := s.pulse(nsCtx, "namespaces")
		t.Fatalf("pulse replay: %v\n%s\npulse namespaces (%v):\n%s", err, out, nsErr, ns)
	}
	same := checkJourneysReplay(ctx, t, s, queries, live)
	// The same queries live, subscribed from the restart on (half the
	// journeys came as deltas) and through the promote of v2: each fold
	// must equal its REST answer.
	subs.settle(ctx, t, s)
	t.Logf("%d requests acknowledged (%d events, retries included); %d queries compared with the truth, %d answered identically after the replay; wall time %v",
		led.posts, led.sent, len(queries), same, time.Since(began).Round(time.Second))
}

// visitFixture is testdata/visits/fixture.json: real-world inputs and
// what Pulse derives from each.
type visitFixture struct {
	SiteURL string `json:"site_url"`
	Agents  []struct {
		UA, Browser, OS, Device string
	} `json:"agents"`
	Bot     string `json:"bot"`
	Clients []struct {
		Addr, Country string
	} `json:"clients"`
	Referrers []struct {
		Ref, Source string
	} `json:"referrers"`
	Campaigns []struct {
		Query, Source string
		UTMSource     string `json:"utm_source"`
		UTMMedium     string `json:"utm_medium"`
		UTMCampaign   string `json:"utm_campaign"`
	} `json:"campaigns"`
	Pages []string `json:"pages"`
	Goals []string `json:"goals"`
}

func loadVisitFixture(t *testing.T) *visitFixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "visits", "fixture.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fx visitFixture
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatalf("decode the visits fixture: %v", err)
	}
	return &fx
}

// ua is the User-Agent of agent (botAgent: the bot's).
func (fx *visitFixture) ua(agent int) string {
	if agent == botAgent {
		return fx.Bot
	}
	return fx.Agents[agent].UA
}

// source is the source and UTM tags (source, medium, campaign; "" when
// none) Pulse derives for a page of the site reached from ref with query.
func (fx *visitFixture) source(ref, query string) (string, [3]string) {
	if query != "" {
		for _, c := range fx.Campaigns {
			if c.Query == query {
				return c.Source, [3]string{c.UTMSource, c.UTMMedium, c.UTMCampaign}
			}
		}
		panic("no campaign " + query + " in the fixture")
	}
	if strings.HasPrefix(ref, fx.SiteURL+"/") {
		return directNone, [3]string{} // a page of the site itself: not a referrer
	}
	for _, r := range fx.Referrers {
		if r.Ref == ref {
			return r.Source, [3]string{}
		}
	}
	panic("no referrer " + ref + " in the fixture")
}

// botAgent is the agent index of the bot: its events count nowhere.
const botAgent = -1

// jVisitor is one visitor of the journeys: a uid, or none (cookieless:
// Pulse derives the visitor from the address and User-Agent).
type jVisitor struct {
	Index         int
	Name, UID     string
	Agent, Client int
	// Late visitors' requests are sent after everyone else's, newest
	// first, as an offline tracker delivers.
	Late   bool
	Events []*jEvent
}

// jEvent is one event of a journey, with what Pulse derives from it.
type jEvent struct {
	ID, Goal, Page, URL, Ref string
	TS                       int64
	Agent, Client            int
	Source                   string    // the source Pulse names ("Direct / None" when none)
	UTM                      [3]string // utm_source, utm_medium, utm_campaign; "" when none
	Visitor                  *jVisitor
	// Day is the UTC day the event was first acknowledged: the day of
	// the salt of a cookieless visitor id.
	Day string
}

func (e *jEvent) json() []byte { return e.jsonAs(journeySite, e.ID, e.TS) }

// jsonAs is e as an event of site with id at ts.
func (e *jEvent) jsonAs(site, id string, ts int64) []byte {
	m := map[string]any{"id": id, "site": site, "type": e.Goal, "ts": ts, "url": e.URL}
	if e.Ref != "" {
		m["ref"] = e.Ref
	}
	if e.Visitor.UID != "" {
		m["uid"] = e.Visitor.UID
	}
	b, _ := json.Marshal(m)
	return b
}

type journeys struct {
	fx       *visitFixture
	visitors []*jVisitor
}

// jRange is a query's date range [from, to).
type jRange struct {
	name     string
	from, to time.Time
}

func (r jRange) body() [2]string {
	return [2]string{r.from.UTC().Format(time.RFC3339), r.to.UTC().Format(time.RFC3339)}
}

// journeyRanges are the ranges asked: all the journeys, and two hours
// in their middle that cut visits at both ends.
type journeyRanges struct{ full, cut jRange }

// journeyGen draws journeys.
type journeyGen struct {
	fx  *visitFixture
	r   *rand.Rand
	end int64 // no event after this
	v   *jVisitor
}

// genJourneys draws random visitors (with a uid, cookieless, a few late,
// two bots) from base on, no event after end, plus the edge cases of
// edgeJourneys.
func genJourneys(fx *visitFixture, r *rand.Rand, base, end time.Time, rg journeyRanges) *journeys {
	j := &journeys{fx: fx}
	g := &journeyGen{fx: fx, r: r, end: end.UnixMilli()}
	usedPair := map[[2]int]bool{} // (agent, client) of cookieless visitors: one visitor each
	for i := range 130 {
		name, uid := fmt.Sprintf("jv-%03d", i), fmt.Sprintf("jv-%03d", i)
		agent, client := r.IntN(len(fx.Agents)), r.IntN(len(fx.Clients))
		switch {
		case i >= 128:
			agent = botAgent
		case i >= 95:
			uid = ""
			for usedPair[[2]int{agent, client}] {
				agent, client = r.IntN(len(fx.Agents)), r.IntN(len(fx.Clients))
			}
			usedPair[[2]int{agent, client}] = true
		}
		start := base.UnixMilli() + r.Int64N(int64(4*time.Hour/time.Millisecond))
		v := g.visitor(len(j.visitors), name, uid, agent, client, start)
		v.Late = r.IntN(12) == 0
		j.visitors = append(j.visitors, v)
	}
	j.visitors = append(j.visitors, edgeJourneys(g, len(j.visitors), base, rg)...)
	return j
}

func (g *journeyGen) visitor(index int, name, uid string, agent, client int, start int64) *jVisitor {
	g.v = &jVisitor{Index: index, Name: name, UID: uid, Agent: agent, Client: client}
	t := start
	for k := 1 + g.r.IntN(4); k > 0 && t <= g.end; k-- {
		t = g.visit(t) + g.betweenGap()
	}
	return g.v
}

// add appends an event of the current visitor at ts (ignored after the
// generator's end).
func (g *journeyGen) add(ts int64, goal, page, ref, query string) {
	if ts > g.end {
		return
	}
	v := g.v
	url := g.fx.SiteURL + page
	if query != "" {
		url += "?" + query
	}
	e := &jEvent{ID: fmt.Sprintf("j-%s-%d", v.Name, len(v.Events)), Goal: goal, Page: page, URL: url, Ref: ref,
		TS: ts, Agent: v.Agent, Client: v.Client, Visitor: v}
	e.Source, e.UTM = g.fx.source(ref, query)
	v.Events = append(v.Events, e)
}

// visit appends one visit from t and returns the time of its last event:
// a bounce (one pageview, maybe custom events after it) about a third of
// the time, else 2-6 pages; some visits have custom events only.
func (g *journeyGen) visit(t int64) int64 {
	ref, query := g.landing()
	if g.r.IntN(20) == 0 {
		g.add(t, g.goal(), g.page(), ref, query)
		if g.r.IntN(2) == 0 {
			t += 1000 + g.r.Int64N(600_000)
			g.add(t, g.goal(), g.page(), "", "")
		}
		return t
	}
	n := 1
	if g.r.IntN(100) >= 35 {
		n = 2 + g.r.IntN(5)
	}
	page := g.page()
	for i := range n {
		if i > 0 {
			t += g.withinGap()
			ref, query = g.fx.SiteURL+page, "" // the previous page: a self-referral
			if g.r.IntN(12) == 0 {
				ref = g.fx.Referrers[g.r.IntN(len(g.fx.Referrers))].Ref // back from elsewhere: the visit keeps its source
			}
			page = g.page()
		}
		g.add(t, "pageview", page, ref, query)
		if g.r.IntN(4) == 0 {
			t += 1000 + g.r.Int64N(20_000)
			g.add(t, g.goal(), page, ref, query)
		}
	}
	return t
}

// landing is how a visit arrives: a campaign link a fifth of the time,
// else a referrer of the fixture (search, social, the site itself, none).
func (g *journeyGen) landing() (ref, query string) {
	ref = g.fx.Referrers[g.r.IntN(len(g.fx.Referrers))].Ref
	if g.r.IntN(5) == 0 {
		return ref, g.fx.Campaigns[g.r.IntN(len(g.fx.Campaigns))].Query
	}
	return ref, ""
}

func (g *journeyGen) page() string { return g.fx.Pages[g.r.IntN(len(g.fx.Pages))] }
func (g *journeyGen) goal() string { return g.fx.Goals[g.r.IntN(len(g.fx.Goals))] }

// withinGap is a gap inside a visit: mostly seconds to minutes, some
// close to 30 minutes, some 1 ms short of it.
func (g *journeyGen) withinGap() int64 {
	switch k := g.r.IntN(20); {
	case k == 0:
		return visitGapMs - 1
	case k <= 2:
		return 15*60_000 + g.r.Int64N(15*60_000-1)
	default:
		return 5_000 + g.r.Int64N(8*60_000)
	}
}

// betweenGap is a gap that starts a new visit: exactly 30 minutes a fifth
// of the time, else up to 2.5 hours more.
func (g *journeyGen) betweenGap() int64 {
	if g.r.IntN(5) == 0 {
		return visitGapMs
	}
	return visitGapMs + 1 + g.r.Int64N(150*60_000)
}

// edgeJourneys are visitors written out by hand, one per rule of the
// semantics, at times in the first hours after base; the last ones
// straddle the ends of the cut range.
func edgeJourneys(g *journeyGen, index int, base time.Time, rg journeyRanges) []*jVisitor {
	at := func(h, m int, ms int64) int64 {
		return base.Add(time.Duration(h)*time.Hour+time.Duration(m)*time.Minute).UnixMilli() + ms
	}
	self := g.fx.SiteURL + "/"
	var out []*jVisitor
	edge := func(name string, agent, client int, build func()) {
		g.v = &jVisitor{Index: index + len(out), Name: name, UID: name, Agent: agent, Client: client}
		build()
		out = append(out, g.v)
	}
	// A gap of exactly 30 minutes: two visits, the second from the site itself.
	edge("edge-gap30", 0, 0, func() {
		g.add(at(0, 10, 123), "pageview", "/", "https://www.google.com/", "")
		g.add(at(0, 40, 123), "pageview", "/pricing", self, "")
	})
	// 1 ms less: one visit of two pages.
	edge("edge-gap30-1ms", 1, 1, func() {
		g.add(at(0, 12, 7), "pageview", "/", "https://news.ycombinator.com/item?id=1", "")
		g.add(at(0, 42, 6), "pageview", "/docs", self, "")
	})
	// A custom event before the first pageview: the source is the
	// event's, the entry page the pageview's.
	edge("edge-goal-first", 2, 2, func() {
		g.add(at(1, 5, 0), "signup", "/signup", "https://t.co/abc", "")
		g.add(at(1, 5, 9_500), "pageview", "/about", self, "")
	})
	// Custom events only: entry and exit are their pages, no bounce.
	edge("edge-no-pageview", 3, 3, func() {
		g.add(at(1, 20, 0), "download", "/docs", "", "")
		g.add(at(1, 25, 0), "download", "/docs/api", "", "")
	})
	// Events at the same instant are ordered by page: entry /blog/launch,
	// exit /pricing.
	edge("edge-ties", 4, 4, func() {
		g.add(at(1, 30, 0), "pageview", "/signup", "https://www.bing.com/search?q=pulse", "")
		g.add(at(1, 30, 0), "pageview", "/blog/launch", "https://www.bing.com/search?q=pulse", "")
		g.add(at(1, 31, 0), "pageview", "/pricing", self, "")
		g.add(at(1, 31, 0), "pageview", "/about", self, "")
	})
	// One visitor (a uid) continuing on a phone: the visit's browser is
	// its first event's, each pageview keeps its own.
	edge("edge-switch-device", 0, 5, func() {
		g.add(at(2, 0, 0), "pageview", "/", "https://www.google.de/search?q=pulse+analytics", "")
		g.v.Agent = 8 // Safari on iOS
		g.add(at(2, 3, 0), "pageview", "/pricing", self, "")
		g.add(at(2, 4, 0), "signup", "/pricing", self, "")
	})
	// A visit that began before the cut range (counted in no visit of
	// it, its events in it take its source), and one that goes on after
	// it (its events after the range are not read).
	cutFrom, cutTo := rg.cut.from.UnixMilli(), rg.cut.to.UnixMilli()
	edge("edge-cut-start", 5, 6, func() {
		g.add(cutFrom-10*60_000, "pageview", "/", "https://www.reddit.com/r/golang/", "")
		g.add(cutFrom+5*60_000, "pageview", "/docs", self, "")
	})
	edge("edge-cut-end", 6, 7, func() {
		g.add(cutTo-5*60_000, "pageview", "/blog/launch", "https://www.linkedin.com/", "")
		g.add(cutTo-60_000, "pageview", "/pricing", self, "")
		g.add(cutTo+5*60_000, "pageview", "/signup", self, "")
	})
	return out
}

// summary says what the journeys exercise.
func (j *journeys) summary(r jRange) string {
	visits, _ := j.sessions(r.to.UnixMilli())
	var events, cookieless, late, bots, bounces, gap30, under int
	for _, v := range j.visitors {
		events += len(v.Events)
		switch {
		case v.Agent == botAgent:
			bots++
		case v.UID == "":
			cookieless++
		}
		if v.Late {
			late++
		}
		evs := sortedEvents(v.Events)
		for i := 1; i < len(evs); i++ {
			switch evs[i].TS - evs[i-1].TS {
			case visitGapMs:
				gap30++
			case visitGapMs - 1:
				under++
			}
		}
	}
	for _, v := range visits {
		if v.pageviews == 1 {
			bounces++
		}
	}
	return fmt.Sprintf("%d visitors (%d cookieless, %d late, %d bots), %d events, %d visits (%d bounces); %d gaps of exactly 30 min, %d of 30 min - 1 ms",
		len(j.visitors), cookieless, late, bots, events, len(visits), bounces, gap30, under)
}

// jRequest is one request of the journeys: consecutive events of one
// visitor, from one User-Agent and address.
type jRequest struct {
	visitor *jVisitor
	events  []*jEvent
	// noise adds a copy of each event on journeyNoise, 20 minutes earlier:
	// a visit of one site that took the other site's events would bridge
	// its gaps.
	noise bool
}

// journeyNoise is a site whose events share requests, visitors and
// times with the journeys' and count in none of their answers.
const journeyNoise = "journeys-noise"

func (q jRequest) body() []byte {
	var lines [][]byte
	for _, e := range q.events {
		lines = append(lines, e.json())
		if q.noise {
			lines = append(lines, e.jsonAs(journeyNoise, "noise-"+e.ID, e.TS-20*60_000))
		}
	}
	return bytes.Join(lines, []byte("\n"))
}

func (q jRequest) lines() int {
	if q.noise {
		return 2 * len(q.events)
	}
	return len(q.events)
}

// journeyRequests cuts each visitor's events (in time order) into
// requests of 1-3 events (a fifth with noise), orders the requests by
// time across visitors, and puts the late visitors' requests last, newest
// first.
func journeyRequests(j *journeys, r *rand.Rand) []jRequest {
	var reqs, late []jRequest
	for _, v := range j.visitors {
		evs := sortedEvents(v.Events)
		var mine []jRequest
		for i := 0; i < len(evs); {
			k, n := 1, 1+r.IntN(3)
			for k < n && i+k < len(evs) && evs[i+k].Agent == evs[i].Agent {
				k++
			}
			mine = append(mine, jRequest{visitor: v, events: evs[i : i+k], noise: r.IntN(5) == 0})
			i += k
		}
		if v.Late {
			slices.Reverse(mine)
			late = append(late, mine...)
			continue
		}
		reqs = append(reqs, mine...)
	}
	slices.SortStableFunc(reqs, func(a, b jRequest) int { return cmp.Compare(a.events[0].TS, b.events[0].TS) })
	return append(reqs, late...)
}

// sortedEvents is evs in the order the visits semantics reads them: by
// time, ties by page, then goal.
func sortedEvents(evs []*jEvent) []*jEvent {
	out := slices.Clone(evs)
	slices.SortStableFunc(out, func(a, b *jEvent) int {
		return cmp.Or(cmp.Compare(a.TS, b.TS), cmp.Compare(a.Page, b.Page), cmp.Compare(a.Goal, b.Goal))
	})
	return out
}

// journeyLedger is what the server acknowledged.
type journeyLedger struct {
	mu    sync.Mutex
	acked []jRequest
	posts int // requests acknowledged, retries included
	sent  int // events in them
}

func (l *journeyLedger) ack(q jRequest) {
	day := time.Now().UTC().Format(time.DateOnly)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.posts++
	l.sent += q.lines()
	l.acked = append(l.acked, q)
	for _, e := range q.events {
		if e.Day == "" {
			e.Day = day
		}
	}
}

func (l *journeyLedger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *journeyLedger) recent(n int) []jRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acked[max(0, len(l.acked)-n):])
}

// sendJourneys sends reqs from three senders (each visitor's requests
// from one, in order), retrying some acknowledged requests with the same
// ids; in the middle it kills the server with SIGKILL, restarts it, calls
// restarted and resends the last requests acknowledged before the kill.
// Requests the kill left unanswered are resent by postFrom.
func sendJourneys(ctx context.Context, t *testing.T, s *server, j *journeys, reqs []jRequest, restarted func()) *journeyLedger {
	t.Helper()
	led := &journeyLedger{}
	const workers = 3
	queues := make([][]jRequest, workers)
	for _, q := range reqs {
		queues[q.visitor.Index%workers] = append(queues[q.visitor.Index%workers], q)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := journeyWorker(ctx, s, j.fx, led, queues[w], rand.New(rand.NewPCG(journeySeed, uint64(10+w)))); err != nil {
				errs <- err
			}
		}()
	}
	for led.count() < len(reqs)/2 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	at := led.count()
	s.stop(syscall.SIGKILL)
	s.run()
	restarted()
	resent := led.recent(25)
	for _, q := range resent {
		if err := postJourney(ctx, s, j.fx, led, q); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if at >= len(reqs) {
		t.Errorf("the kill came after the senders finished: nothing was in flight")
	}
	t.Logf("SIGKILL with %d of %d requests acknowledged; restarted and resent %d acknowledged ones", at, len(reqs), len(resent))
	return led
}

// journeyWorker sends its requests in order; after one in ten it resends
// an earlier one it had acknowledged (a client retry: same ids).
func journeyWorker(ctx context.Context, s *server, fx *visitFixture, led *journeyLedger, reqs []jRequest, r *rand.Rand) error {
	for i, q := range reqs {
		if err := postJourney(ctx, s, fx, led, q); err != nil {
			return err
		}
		if i > 0 && r.IntN(10) == 0 {
			if err := postJourney(ctx, s, fx, led, reqs[r.IntN(i)]); err != nil {
				return err
			}
		}
	}
	return nil
}

// postJourney posts q with its visitor's User-Agent, through the trusted
// proxy from its visitor's address, and records it once acknowledged.
func postJourney(ctx context.Context, s *server, fx *visitFixture, led *journeyLedger, q jRequest) error {
	e := q.events[0]
	code, res, err := s.postFrom(ctx, q.body(), fx.ua(e.Agent), fx.Clients[e.Client].Addr)
	if err != nil {
		return err
	}
	if code != http.StatusAccepted || res.Accepted != q.lines() {
		return fmt.Errorf("collect answered %d, %+v, for %d events of %s", code, res, q.lines(), q.visitor.Name)
	}
	led.ack(q)
	return nil
}

// counted reports whether the Stats API counts e: not a bot's.
func (e *jEvent) counted() bool { return e.Agent != botAgent }

// visitorKey is who Pulse counts e's visitor as: its uid, or for a
// cookieless one its address and User-Agent on its receive day.
func (e *jEvent) visitorKey() string {
	if e.Visitor.UID != "" {
		return "uid:" + e.Visitor.UID
	}
	return fmt.Sprintf("cookieless:%d:%d:%s", e.Client, e.Agent, e.Day)
}

// waitJourneysApplied waits until the server counts every event over r:
// the stream is applied.
func waitJourneysApplied(ctx context.Context, t *testing.T, s *server, j *journeys, r jRange) {
	t.Helper()
	want := 0
	for _, v := range j.visitors {
		for _, e := range v.Events {
			if e.counted() {
				want++
			}
		}
	}
	body := mustJSON(map[string]any{"site_id": journeySite, "metrics": []string{"events"}, "date_range": r.body()})
	var last string
	for {
		code, b, err := s.postStats(ctx, []byte(body))
		var a statsAnswer
		if err == nil && code == 200 && json.Unmarshal(b, &a) == nil && len(a.Results) == 1 && a.Results[0].Metrics[0] == float64(want) {
			return
		}
		last = fmt.Sprintf("%d %s %v", code, b, err)
		if ctx.Err() != nil {
			t.Fatalf("events of %s: %s, want %d", journeySite, last, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jVisit is a visit the test finds in the journeys.
type jVisit struct {
	events      []*jEvent // in order
	pageviews   int
	entry, exit string
}

func (v *jVisit) first() *jEvent { return v.events[0] }

// durationMs is from the visit's first event to its last.
func (v *jVisit) durationMs() int64 { return v.events[len(v.events)-1].TS - v.first().TS }

// sessions is the visits of the counted events before to (a visit's
// events are read up to a range's end), and each event's visit.
func (j *journeys) sessions(to int64) ([]*jVisit, map[*jEvent]*jVisit) {
	byVisitor := map[string][]*jEvent{}
	for _, v := range j.visitors {
		for _, e := range v.Events {
			if e.counted() && e.TS < to {
				byVisitor[e.visitorKey()] = append(byVisitor[e.visitorKey()], e)
			}
		}
	}
	var visits []*jVisit
	of := map[*jEvent]*jVisit{}
	for _, key := range slices.Sorted(maps.Keys(byVisitor)) {
		var cur *jVisit
		for _, e := range sortedEvents(byVisitor[key]) {
			if cur == nil || e.TS-cur.events[len(cur.events)-1].TS >= visitGapMs {
				cur = &jVisit{}
				visits = append(visits, cur)
			}
			cur.events = append(cur.events, e)
			of[e] = cur
		}
	}
	for _, v := range visits {
		v.entry, v.exit = v.first().Page, v.events[len(v.events)-1].Page
		seen := false
		for _, e := range v.events {
			if e.Goal != "pageview" {
				continue
			}
			v.pageviews++
			if !seen {
				v.entry, seen = e.Page, true
			}
			v.exit = e.Page
		}
	}
	return visits, of
}

// value is e's value of dim, e being an event of visit v: the visit's
// for its source, UTM tags, entry and exit page; the event's own for
// the rest.
func (j *journeys) value(dim string, e *jEvent, v *jVisit) string {
	orNotSet := func(s string) string { return cmp.Or(s, notSetLabel) }
	switch dim {
	case "event:page":
		return e.Page
	case "event:goal":
		return e.Goal
	case "visit:source":
		return v.first().Source
	case "visit:utm_source":
		return orNotSet(v.first().UTM[0])
	case "visit:utm_medium":
		return orNotSet(v.first().UTM[1])
	case "visit:utm_campaign":
		return orNotSet(v.first().UTM[2])
	case "visit:entry_page":
		return v.entry
	case "visit:exit_page":
		return v.exit
	case "visit:browser":
		return orNotSet(j.fx.Agents[e.Agent].Browser)
	case "visit:os":
		return orNotSet(j.fx.Agents[e.Agent].OS)
	case "visit:country":
		return orNotSet(j.fx.Clients[e.Client].Country)
	case "visit:device":
		return j.fx.Agents[e.Agent].Device
	}
	panic("the journeys' truth has no value of " + dim)
}

// label is the row label of dim for e, an event of visit v: its value, or
// for time:hour the wall-clock hour of e in loc.
func (j *journeys) label(dim string, e *jEvent, v *jVisit, loc *time.Location) string {
	if dim != "time:hour" {
		return j.value(dim, e, v)
	}
	t := time.UnixMilli(e.TS).In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, loc).Format(time.DateTime)
}

// jFilter is a filter leaf of a query: op "is" or "contains".
type jFilter struct {
	Op, Dim string
	Values  []string
}

func (f jFilter) MarshalJSON() ([]byte, error) { return json.Marshal([]any{f.Op, f.Dim, f.Values}) }

func (f jFilter) match(value string) bool {
	for _, w := range f.Values {
		if f.Op == "is" && value == w || f.Op == "contains" && strings.Contains(value, w) {
			return true
		}
	}
	return false
}

// jQuery is one Stats API query of the test.
type jQuery struct {
	Name    string
	Range   jRange
	Metrics []string
	Dims    []string
	Filters []jFilter
	TZ      string // the query's timezone; "" is UTC
}

func (q jQuery) body() []byte {
	m := map[string]any{"site_id": journeySite, "metrics": q.Metrics, "date_range": q.Range.body(),
		"pagination": map[string]int{"limit": 1000}}
	if len(q.Dims) > 0 {
		m["dimensions"] = q.Dims
	}
	if len(q.Filters) > 0 {
		m["filters"] = q.Filters
	}
	if q.TZ != "" {
		m["timezone"] = q.TZ
	}
	return []byte(mustJSON(m))
}

// journeyQueries are the dashboard's questions about visits, over all the
// journeys and over the cut range.
func journeyQueries(rg journeyRanges) []jQuery {
	// views_per_visit is asked without dimensions and without a filter
	// on event:page, as Plausible's rules allow (checkJourneyRefusals).
	visitAll := []string{"visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "views_per_visit"}
	perVisit := visitAll[:5]
	source := func(name string) []jFilter { return []jFilter{{"is", "visit:source", []string{name}}} }
	google := source("Google")
	pricing := []jFilter{{"is", "event:page", []string{"/pricing"}}}
	f, c := rg.full, rg.cut
	return []jQuery{
		{"pages", f, []string{"visitors", "pageviews", "events"}, []string{"event:page"}, nil, ""},
		{"goals", f, []string{"visitors", "events"}, []string{"event:goal"}, nil, ""},
		{"pageviews on /pricing", f, []string{"visitors", "pageviews"}, nil, pricing, ""},
		{"top stats", f, append(slices.Clone(visitAll), "events"), nil, nil, ""},
		{"sources", f, perVisit, []string{"visit:source"}, nil, ""},
		{"entry pages", f, []string{"visits", "visitors", "bounce_rate", "visit_duration"}, []string{"visit:entry_page"}, nil, ""},
		{"exit pages", f, []string{"visits", "visitors", "pageviews"}, []string{"visit:exit_page"}, nil, ""},
		{"utm sources", f, []string{"visitors", "visits"}, []string{"visit:utm_source"}, nil, ""},
		{"utm campaigns", f, []string{"visitors", "visits", "bounce_rate"}, []string{"visit:utm_campaign"}, nil, ""},
		{"browsers", f, []string{"visitors", "visits", "pageviews"}, []string{"visit:browser"}, nil, ""},
		{"operating systems", f, []string{"visitors", "visits", "pageviews"}, []string{"visit:os"}, nil, ""},
		{"countries", f, []string{"visitors", "visits", "pageviews"}, []string{"visit:country"}, nil, ""},
		{"devices", f, []string{"visitors", "visits", "pageviews"}, []string{"visit:device"}, nil, ""},
		{"hours", f, []string{"visits", "pageviews", "visitors"}, []string{"time:hour"}, nil, ""},
		{"hours in Kolkata (UTC+5:30)", f, []string{"visits", "bounce_rate", "pageviews"}, []string{"time:hour"}, nil, "Asia/Kolkata"},
		{"source Google", f, visitAll, nil, google, ""},
		{"source Direct / None", f, visitAll, nil, source(directNone), ""},
		{"source newsletter (a campaign)", f, visitAll, nil, source("newsletter"), ""},
		{"source Hacker News", f, visitAll, nil, source("Hacker News"), ""},
		{"source Google by entry page", f, []string{"visits", "visitors"}, []string{"visit:entry_page"}, google, ""},
		{"visits through /pricing", f, []string{"visits", "bounce_rate", "visit_duration"}, nil, pricing, ""},
		{"signups by source", f, []string{"visits", "visitors"}, []string{"visit:source"}, []jFilter{{"is", "event:goal", []string{"signup"}}}, ""},
		{"country DE", f, []string{"visitors", "visits", "pageviews"}, nil, []jFilter{{"is", "visit:country", []string{"DE"}}}, ""},
		{"entry on /", f, []string{"visits", "pageviews", "bounce_rate"}, nil, []jFilter{{"is", "visit:entry_page", []string{"/"}}}, ""},
		{"cut: top stats", c, visitAll, nil, nil, ""},
		{"cut: sources", c, []string{"visitors", "visits", "pageviews", "visit_duration"}, []string{"visit:source"}, nil, ""},
		{"cut: source Google", c, visitAll, nil, google, ""},
		{"cut: entry pages", c, []string{"visits", "visitors"}, []string{"visit:entry_page"}, nil, ""},
		{"cut: exit pages", c, []string{"visits", "pageviews"}, []string{"visit:exit_page"}, nil, ""},
		{"cut: visits through /pricing", c, []string{"visits", "bounce_rate", "visit_duration"}, nil, pricing, ""},
	}
}

// jGroup is one row of the truth being summed.
type jGroup struct {
	visitors              map[string]bool
	events, pageviews     int
	visits, bounces       int
	durationMs, visitsPVs int64
}

// truth is q's answer computed from the journeys, by the row's
// dimensions joined by "|": event metrics over the matching events in the
// range (each taking its visit's source, UTM tags, entry and exit page),
// visit metrics over the visits that begin in the range and have an event
// matching the filters, read up to the range's end.
func (j *journeys) truth(q jQuery) map[string][]float64 {
	from, to := q.Range.from.UnixMilli(), q.Range.to.UnixMilli()
	loc := mustZone(cmp.Or(q.TZ, "UTC"))
	visits, of := j.sessions(to)
	groups := map[string]*jGroup{}
	group := func(e *jEvent, v *jVisit) *jGroup {
		labels := make([]string, len(q.Dims))
		for i, d := range q.Dims {
			labels[i] = j.label(d, e, v, loc)
		}
		key := strings.Join(labels, "|")
		if groups[key] == nil {
			groups[key] = &jGroup{visitors: map[string]bool{}}
		}
		return groups[key]
	}
	for e, v := range of {
		if e.TS >= from && j.matches(q.Filters, e, v) {
			g := group(e, v)
			g.visitors[e.visitorKey()] = true
			g.events++
			if e.Goal == "pageview" {
				g.pageviews++
			}
		}
	}
	for _, v := range visits {
		if v.first().TS < from || !slices.ContainsFunc(v.events, func(e *jEvent) bool { return j.matches(q.Filters, e, v) }) {
			continue
		}
		g := group(v.first(), v)
		g.visits++
		g.durationMs += v.durationMs()
		g.visitsPVs += int64(v.pageviews)
		if v.pageviews == 1 {
			g.bounces++
		}
	}
	out := map[string][]float64{}
	for key, g := range groups {
		out[key] = g.metrics(q.Metrics)
	}
	return out
}

func (j *journeys) matches(fs []jFilter, e *jEvent, v *jVisit) bool {
	for _, f := range fs {
		if !f.match(j.value(f.Dim, e, v)) {
			return false
		}
	}
	return true
}

// metrics are g's values of names, with Plausible's roundings.
func (g *jGroup) metrics(names []string) []float64 {
	out := make([]float64, len(names))
	per := func(x float64) float64 {
		if g.visits == 0 {
			return 0
		}
		return x / float64(g.visits)
	}
	for i, m := range names {
		switch m {
		case "visitors":
			out[i] = float64(len(g.visitors))
		case "events":
			out[i] = float64(g.events)
		case "pageviews":
			out[i] = float64(g.pageviews)
		case "visits":
			out[i] = float64(g.visits)
		case "bounce_rate":
			out[i] = math.Round(per(100 * float64(g.bounces)))
		case "visit_duration":
			out[i] = math.Round(per(float64(g.durationMs)) / 1000)
		case "views_per_visit":
			out[i] = math.Round(per(float64(g.visitsPVs))*100) / 100
		default:
			panic("the journeys' truth has no metric " + m)
		}
	}
	return out
}

// jAnswer is a query's answer as received.
type jAnswer struct {
	raw     []byte
	code    int
	results string // results and meta as JSON, for the replay's comparison
	meta    string
}

func askJourney(ctx context.Context, s *server, q jQuery) (jAnswer, statsAnswer, error) {
	code, b, err := s.postStats(ctx, q.body())
	if err != nil {
		return jAnswer{}, statsAnswer{}, err
	}
	a := jAnswer{raw: b, code: code}
	var got statsAnswer
	if code == http.StatusOK {
		if err := json.Unmarshal(b, &got); err != nil {
			return a, got, fmt.Errorf("decode %s: %w", b, err)
		}
		a.results, a.meta = mustJSON(got.Results), mustJSON(got.Meta)
	}
	return a, got, nil
}

// diffJourney says how got differs from want ("" when it does not): each
// row's numbers exactly, visitors within HyperLogLog's error when the
// answer names them approximate; a row missing on one side equals a row
// of zeros on the other.
func diffJourney(q jQuery, want map[string][]float64, a jAnswer, got statsAnswer) string {
	if a.code != http.StatusOK {
		return fmt.Sprintf("status %d: %s", a.code, clip(string(a.raw)))
	}
	approx := slices.Contains(got.Meta.Approximate, "visitors")
	have := rowMap(got)
	zero := make([]float64, len(q.Metrics))
	var d []string
	for _, key := range slices.Sorted(maps.Keys(unionKeys(want, have))) {
		w, g := want[key], have[key]
		if w == nil {
			w = zero
		}
		if g == nil {
			g = zero
		}
		for i, m := range q.Metrics {
			if !sameMetric(m, w[i], g[i], approx) {
				d = append(d, fmt.Sprintf("row [%s]: %s %v, want %v", key, m, g[i], w[i]))
			}
		}
	}
	return strings.Join(d, "; ")
}

func unionKeys(a, b map[string][]float64) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// sameMetric: visitors named approximate may differ by HyperLogLog's
// error (2%, and at least 1); anything else within float noise.
func sameMetric(name string, want, got float64, approx bool) bool {
	if name == "visitors" && approx {
		return math.Abs(want-got) <= max(1, 0.02*want)
	}
	return math.Abs(want-got) <= 1e-6
}

// checkJourneyQueries asks every query until it equals the truth (the
// visits may be applied after the events) or a deadline, and reports
// each that never did with its body, the truth and the answer; it
// returns the answers.
func checkJourneyQueries(ctx context.Context, t *testing.T, s *server, j *journeys, queries []jQuery) []jAnswer {
	t.Helper()
	out := make([]jAnswer, len(queries))
	deadline := time.Now().Add(20 * time.Second)
	bad, rows, approx := 0, 0, 0
	for i, q := range queries {
		want := j.truth(q)
		rows += len(want)
		for {
			a, got, err := askJourney(ctx, s, q)
			if err != nil {
				t.Fatalf("query %q: %v", q.Name, err)
			}
			out[i] = a
			d := diffJourney(q, want, a, got)
			if d == "" {
				if slices.Contains(got.Meta.Approximate, "visitors") {
					approx++
				}
				break
			}
			if time.Now().After(deadline) || a.code != http.StatusOK {
				bad++
				t.Errorf("query %q differs from the truth: %s\n  body %s\n  want %s\n  got  %s",
					q.Name, clip(d), q.body(), clip(mustJSON(want)), clip(string(a.raw)))
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	t.Logf("%d queries (%d rows in the truth); %d differ from it; %d answered visitors as approximate", len(queries), rows, bad, approx)
	return out
}

// subscribeJourneyQueries subscribes the queries live over one
// WebSocket (a connection holds up to 32); their messages go to the
// returned statsLive, whose settle compares each fold with POST /v1/stats.
func subscribeJourneyQueries(ctx context.Context, t *testing.T, s *server, queries []jQuery) *statsLive {
	t.Helper()
	l := &statsLive{bodies: map[string]string{}, folds: map[string]*liveFold{}, msgs: make(chan liveQueryMsg, 4096)}
	// Cleanups run last first: stop forwarding, then close the
	// connection (liveReader's), then wait for the forwarder, which
	// drains its reader until it closes.
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	var c *websocket.Conn
	for i, q := range queries {
		id := fmt.Sprintf("j%d", i)
		l.bodies[id], l.folds[id] = string(q.body()), &liveFold{}
		msg := []byte(fmt.Sprintf(`{"op":"subscribe","id":%q,"query":%s}`, id, q.body()))
		if c == nil {
			c = s.subscribe(ctx, t, string(msg))
		} else if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
	}
	stop := make(chan struct{})
	l.forward(&wg, liveReader(t, c), stop)
	t.Cleanup(func() { close(stop) })
	return l
}

// checkJourneyRefusals checks that the visit queries Pulse cannot
// answer as asked are a 400 naming the part: views_per_visit with
// dimensions or a filter on event:page (Plausible's rules), visit metrics
// by an event dimension (visits are not split by page).
func checkJourneyRefusals(ctx context.Context, t *testing.T, s *server, r jRange) {
	t.Helper()
	pricing := []jFilter{{"is", "event:page", []string{"/pricing"}}}
	for _, tc := range []struct {
		q     jQuery
		parts []string // the metric or the dimension that cannot go together
	}{
		{jQuery{"views per visit by source", r, []string{"visits", "views_per_visit"}, []string{"visit:source"}, nil, ""}, []string{"metrics[1]", "dimensions[0]"}},
		{jQuery{"views per visit through /pricing", r, []string{"views_per_visit"}, nil, pricing, ""}, []string{"metrics[0]", "filters[0]"}},
		{jQuery{"visits by page", r, []string{"visits"}, []string{"event:page"}, nil, ""}, []string{"metrics[0]", "dimensions[0]"}},
		{jQuery{"bounce rate by goal", r, []string{"pageviews", "bounce_rate"}, []string{"event:goal"}, nil, ""}, []string{"metrics[1]", "dimensions[0]"}},
	} {
		code, b, err := s.postStats(ctx, tc.q.body())
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Part string }
		if code != http.StatusBadRequest || json.Unmarshal(b, &e) != nil || !slices.Contains(tc.parts, e.Part) {
			t.Errorf("query %q answered %d %s, want a 400 naming one of %v\n  body %s", tc.q.Name, code, clip(string(b)), tc.parts, tc.q.body())
		}
	}
}

// checkJourneysReplay asks every query again after the replay was
// promoted: results and meta must be the ones before it (every range is
// closed or holds no later event). It returns how many were.
func checkJourneysReplay(ctx context.Context, t *testing.T, s *server, queries []jQuery, live []jAnswer) int {
	t.Helper()
	same := 0
	for i, q := range queries {
		a, _, err := askJourney(ctx, s, q)
		if err != nil {
			t.Fatalf("query %q after the replay: %v", q.Name, err)
		}
		if a.code == live[i].code && a.results == live[i].results && a.meta == live[i].meta {
			same++
			continue
		}
		t.Errorf("query %q answers differently after the replay into v2:\n  body %s\n  before %d %s\n  after  %d %s",
			q.Name, q.body(), live[i].code, clip(string(live[i].raw)), a.code, clip(string(a.raw)))
	}
	return same
}

// TestVisitorJourneysTruth checks the test's own visits on the journeys
// written out by hand: each rule of the semantics gives the visits the
// contract says.
func TestVisitorJourneysTruth(t *testing.T) {
	fx := loadVisitFixture(t)
	base := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	rg := journeyRanges{
		full: jRange{"full", base, base.Add(10 * time.Hour)},
		cut:  jRange{"cut", base.Add(3 * time.Hour), base.Add(5 * time.Hour)},
	}
	g := &journeyGen{fx: fx, r: rand.New(rand.NewPCG(1, 2)), end: rg.full.to.UnixMilli()}
	j := &journeys{fx: fx, visitors: edgeJourneys(g, 0, base, rg)}
	describe := func(to time.Time) map[string][]string {
		visits, _ := j.sessions(to.UnixMilli())
		out := map[string][]string{}
		for _, v := range visits {
			e := v.first()
			out[e.Visitor.Name] = append(out[e.Visitor.Name], fmt.Sprintf("%s %s>%s pv=%d %dms %s",
				j.value("visit:source", e, v), v.entry, v.exit, v.pageviews, v.durationMs(), j.value("visit:browser", e, v)))
		}
		return out
	}
	all, cut := describe(rg.full.to), describe(rg.cut.to)
	for _, tc := range []struct {
		visitor string
		got     []string
		want    []string
	}{
		{"edge-gap30", all["edge-gap30"], []string{"Google />/ pv=1 0ms Chrome", "Direct / None /pricing>/pricing pv=1 0ms Chrome"}},
		{"edge-gap30-1ms", all["edge-gap30-1ms"], []string{"Hacker News />/docs pv=2 1799999ms Firefox"}},
		{"edge-goal-first", all["edge-goal-first"], []string{"Twitter /about>/about pv=1 9500ms Microsoft Edge"}},
		{"edge-no-pageview", all["edge-no-pageview"], []string{"Direct / None /docs>/docs/api pv=0 300000ms Safari"}},
		{"edge-ties", all["edge-ties"], []string{"Bing /blog/launch>/pricing pv=4 60000ms Firefox"}},
		{"edge-switch-device", all["edge-switch-device"], []string{"Google />/pricing pv=2 240000ms Chrome"}},
		{"edge-cut-start", all["edge-cut-start"], []string{"Reddit />/docs pv=2 900000ms Chrome"}},
		{"edge-cut-end", all["edge-cut-end"], []string{"LinkedIn /blog/launch>/signup pv=3 600000ms Firefox"}},
		{"edge-cut-end read to the cut's end", cut["edge-cut-end"], []string{"LinkedIn /blog/launch>/pricing pv=2 240000ms Firefox"}},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s: visits %q, want %q", tc.visitor, tc.got, tc.want)
		}
	}
}
