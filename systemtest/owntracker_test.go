package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pulsehq/pulse/internal/browsertest"
	"github.com/pulsehq/pulse/refsource"
	"github.com/pulsehq/pulse/uaparse"
)

// ownSite is the site id the pages of TestOwnTracker send under.
const ownSite = "owntracker"

// ownTrackerPath is Pulse's tracker with every extension the journey
// uses, as a site would load it from the Pulse server.
const ownTrackerPath = "/tracker.outbound-links.file-downloads.404.hash.js"

// ownForumPage is the page of another site that links to the shop: it
// plays the referrer.
const ownForumPage = `<!doctype html>
<html><head><title>forum</title></head><body>
<p>Have a look at <a id="go" href="%s/app">this shop</a>.</p>
</body></html>`

// ownElsewherePage is where the shop's outbound link leads.
const ownElsewherePage = `<!doctype html>
<html><head><title>elsewhere</title></head><body><p id="elsewhere">elsewhere</p></body></html>`

// ownAppPage is a single-page app set up as web/README.md says: the queue
// stub first, custom events called at once (before the deferred tracker
// runs), and the tracker from the Pulse server (another origin).
// data-allow-localhost because httptest serves on loopback. The download
// link's own handler prevents the navigation, as pages do: the tracker
// must see the click anyway.
const ownAppPage = `<!doctype html>
<html><head><title>shop</title>
<script>window.pulse=window.pulse||function(){(pulse.q=pulse.q||[]).push(arguments)}</script>
<script>
pulse("Signup", {plan: "pro"})
pulse("Newsletter")
window.queuedBeforeLoad = pulse.q ? pulse.q.length : -1
</script>
<script src="%s" data-site="%s" data-allow-localhost defer></script>
</head><body>
<button id="upgrade" data-pulse-click="upgrade" onclick="pulse('Signup', {plan: 'free'})">Upgrade</button>
<button id="settings" onclick="history.pushState({}, '', '/app/settings')">Settings</button>
<a id="billing" href="#/billing">Billing</a>
<a id="dl" href="/files/report.pdf?v=2">Report</a>
<a id="out" href="%s/elsewhere">Elsewhere</a>
<script>document.getElementById("dl").addEventListener("click", (e) => e.preventDefault())</script>
</body></html>`

// ownNotFoundPage is the shop's 404 page: the tag's data-404 sends the
// 404 event after the pageview.
const ownNotFoundPage = `<!doctype html>
<html><head><title>not found</title>
<script src="%s" data-site="%s" data-allow-localhost data-404 defer></script>
</head><body><p id="gone">Not found</p></body></html>`

// TestOwnTracker runs Pulse's own tracker, as the built binary serves it
// with the outbound-links, file-downloads, 404 and hash extensions, on a
// shop served from another origin, in headless Chromium, through one
// visitor's journey: from a link on another site to the shop's app page,
// custom events queued by the README's stub before the tracker loads and
// called after it, an SPA route, a hash route, a file download, an
// outbound link followed for real (the pagehide flush), and the shop's 404
// page. The Stats API must count every event exactly, by name, page and
// props, and the journey as one visit with its entry and exit pages, its
// source, browser and OS.
func TestOwnTracker(t *testing.T) {
	browser := browsertest.New(t) // skips under -short
	s := newServer(t)
	// The shop is served as localhost and the forum as 127.0.0.1: two
	// hosts, so the forum is a referrer of the shop, not the shop itself.
	forum, shop := httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)
	forumURL := "http://" + forum.Listener.Addr().String()
	shopURL := strings.Replace("http://"+shop.Listener.Addr().String(), "127.0.0.1", "localhost", 1)
	tracker := s.url(ownTrackerPath)
	forum.Config.Handler = ownPages(map[string]string{
		"/forum/thread": fmt.Sprintf(ownForumPage, shopURL),
		"/elsewhere":    ownElsewherePage,
	}, nil)
	shop.Config.Handler = ownPages(map[string]string{
		"/app": fmt.Sprintf(ownAppPage, tracker, ownSite, forumURL),
	}, []byte(fmt.Sprintf(ownNotFoundPage, tracker, ownSite)))
	forum.Start()
	defer forum.Close()
	shop.Start()
	defer shop.Close()

	start := time.Now()
	tab := browsertest.Tab(t, browser)
	j := walkOwnJourney(t, tab, forumURL, shopURL)
	journey := time.Since(start)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	q := ownQuery{site: ownSite, from: start.Add(-time.Hour), to: start.Add(2 * time.Hour)}
	wantGoals(t, ctx, s, ownSite, map[string]int64{
		"pageview": 4, "Signup": 2, "Newsletter": 1, "click": 1,
		"File Download": 1, "Outbound Link: Click": 1, "404": 1,
	})
	wantStatsRows(t, ctx, s, "events by goal and props",
		q.body([]string{"events"}, []string{"event:goal", "event:props:plan", "event:props:url", "event:props:path", "event:props:target"}),
		map[string][]float64{
			// goal | plan | url | path | target
			"pageview | (none) | (none) | (none) | (none)":                                 {4},
			"Signup | pro | (none) | (none) | (none)":                                      {1},
			"Signup | free | (none) | (none) | (none)":                                     {1},
			"Newsletter | (none) | (none) | (none) | (none)":                               {1},
			"click | (none) | (none) | (none) | upgrade":                                   {1},
			"File Download | (none) | " + shopURL + "/files/report.pdf | (none) | (none)":  {1},
			"Outbound Link: Click | (none) | " + forumURL + "/elsewhere | (none) | (none)": {1},
			"404 | (none) | (none) | /nope | (none)":                                       {1},
		})
	wantStatsRows(t, ctx, s, "pageviews by page",
		q.body([]string{"pageviews"}, []string{"event:page"}),
		map[string][]float64{"/app": {1}, "/app/settings": {1}, "/app/settings#/billing": {1}, "/nope": {1}})

	agent := uaparse.New().Parse(j.userAgent)
	wantStatsRows(t, ctx, s, "the visit",
		q.body([]string{"visits", "visitors", "bounce_rate"},
			[]string{"visit:entry_page", "visit:exit_page", "visit:source", "visit:browser", "visit:os", "visit:device"}),
		map[string][]float64{
			// entry | exit | source | browser | os | device: visits, visitors, bounce_rate
			strings.Join([]string{"/app", "/nope", j.source, notSet(agent.Browser), notSet(agent.OS), agent.Device}, " | "): {1, 1, 0},
		})
	top := wantStatsRows(t, ctx, s, "top stats",
		q.body([]string{"visitors", "visits", "pageviews", "events", "bounce_rate", "views_per_visit", "visit_duration"}, nil),
		// visit_duration (-1: any value) is checked below against the journey's time.
		map[string][]float64{"": {1, 1, 4, 11, 0, 4, -1}})
	if d := top[""][6]; d < 0 || d > journey.Seconds()+1 {
		t.Errorf("visit_duration %v s, want between 0 and the journey's %v", d, journey.Round(time.Second))
	}
	t.Logf("one visit of %s (visit_duration %v s): source %q, browser %q, os %q, device %q (User-Agent %q); the Stats API counted it exactly",
		journey.Round(time.Millisecond), top[""][6], j.source, agent.Browser, agent.OS, agent.Device, j.userAgent)
}

// ownJourney is what the browser said during the journey.
type ownJourney struct {
	userAgent string // navigator.userAgent
	source    string // the visit's source, as refsource names the app page's document.referrer
}

// walkOwnJourney takes one visitor from the forum's link through the
// shop, and waits until the tracker's queue is empty on the last page:
// every event has been accepted.
func walkOwnJourney(t *testing.T, tab context.Context, forumURL, shopURL string) ownJourney {
	t.Helper()
	browsertest.Do(t, tab, "open the forum thread",
		chromedp.Navigate(forumURL+"/forum/thread"), chromedp.WaitVisible(`#go`))
	browsertest.Do(t, tab, "follow the link to the shop",
		chromedp.Click(`#go`), chromedp.WaitVisible(`#upgrade`))
	poll(t, tab, `typeof pulse.optOut === "function"`)
	if n := browsertest.Eval[int](t, tab, `window.queuedBeforeLoad`); n != 2 {
		t.Fatalf("the stub held %d calls before the tracker loaded, want 2", n)
	}
	var j ownJourney
	j.userAgent = browsertest.Eval[string](t, tab, `navigator.userAgent`)
	referrer := browsertest.Eval[string](t, tab, `document.referrer`)
	page := browsertest.Eval[string](t, tab, `location.href`)
	sources, err := refsource.New()
	if err != nil {
		t.Fatal(err)
	}
	j.source = sources.Source(referrer, page)
	if j.source == refsource.Direct {
		t.Fatalf("the app page's referrer %q on %s is direct traffic: the journey would not test a source", referrer, page)
	}

	browsertest.Do(t, tab, "custom event after load", chromedp.Click(`#upgrade`))
	browsertest.Do(t, tab, "SPA route", chromedp.Click(`#settings`))
	poll(t, tab, `location.pathname === "/app/settings"`)
	browsertest.Do(t, tab, "hash route", chromedp.Click(`#billing`))
	poll(t, tab, `location.hash === "#/billing"`)
	browsertest.Do(t, tab, "download", chromedp.Click(`#dl`))
	// The outbound link is followed: the click's event leaves in the
	// pagehide flush.
	browsertest.Do(t, tab, "outbound link",
		chromedp.Click(`#out`), chromedp.WaitVisible(`#elsewhere`))
	browsertest.Do(t, tab, "open a missing page of the shop",
		chromedp.Navigate(shopURL+"/nope"), chromedp.WaitVisible(`#gone`))
	poll(t, tab, `typeof pulse.optOut === "function" && JSON.parse(localStorage.pulse_q || "[]").length === 0`)
	browsertest.Do(t, tab, "leave the shop", chromedp.Navigate("about:blank"))
	return j
}

// ownPages serves pages by path, and notFound (with status 404) for any
// other path when it is set.
func ownPages(pages map[string]string, notFound []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, ok := pages[r.URL.Path]
		switch {
		case ok:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, page)
		case notFound != nil:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			w.Write(notFound)
		default:
			http.NotFound(w, r)
		}
	})
}

// ownQuery is the site and fixed range of TestOwnTracker's Stats API
// queries.
type ownQuery struct {
	site     string
	from, to time.Time
}

// body is a Stats API query of metrics by dims over q's range.
func (q ownQuery) body(metrics, dims []string) string {
	b, err := json.Marshal(map[string]any{
		"site_id":    q.site,
		"metrics":    metrics,
		"dimensions": append([]string{}, dims...),
		"date_range": []string{q.from.UTC().Format(time.RFC3339), q.to.UTC().Format(time.RFC3339)},
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// wantStatsRows waits until the Stats API answers body with want exactly:
// one row per key (the row's dimensions joined by " | "), each with its
// metrics in order; a want of -1 matches any value. It returns the last
// answer.
func wantStatsRows(t *testing.T, ctx context.Context, s *server, what, body string, want map[string][]float64) map[string][]float64 {
	t.Helper()
	var got map[string][]float64
	for {
		code, b, err := s.postStats(ctx, []byte(body))
		if err != nil || code != http.StatusOK {
			t.Fatalf("%s: POST /v1/stats %s: %d %s %v", what, body, code, b, err)
		}
		var a statsAnswer
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("%s: decode %s: %v", what, b, err)
		}
		got = map[string][]float64{}
		for _, r := range a.Results {
			var m []float64
			for _, v := range r.Metrics {
				n, _ := v.(float64)
				m = append(m, n)
			}
			got[strings.Join(r.Dimensions, " | ")] = m
		}
		if rowsMatch(got, want) {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: the Stats API answers\n%s\nwant\n%s", what, showRows(got), showRows(want))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func rowsMatch(got, want map[string][]float64) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if w[i] != -1 && g[i] != w[i] {
				return false
			}
		}
	}
	return true
}

func showRows(rows map[string][]float64) string {
	var lines []string
	for k, m := range rows {
		lines = append(lines, fmt.Sprintf("  %q: %v", k, m))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// notSet is the Stats API's label of an empty visit:* value.
func notSet(v string) string {
	if v == "" {
		return "(not set)"
	}
	return v
}
