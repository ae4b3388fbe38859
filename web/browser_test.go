package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/pulsehq/pulse/internal/browsertest"
)

// These tests drive the real tracker in headless Chromium against a test
// collector that records what arrives at /v1/collect.

// userAgent is an ordinary desktop Chrome, so no bot filter of a real server
// would drop these events.
const userAgent = browsertest.UserAgent

type clientEvent struct {
	ID    string         `json:"id"`
	Site  string         `json:"site"`
	Type  string         `json:"type"`
	TS    int64          `json:"ts"`
	URL   string         `json:"url"`
	Ref   string         `json:"ref"`
	UID   string         `json:"uid"`
	Props map[string]any `json:"props"`
}

func (e clientEvent) path() string {
	u, err := url.Parse(e.URL)
	if err != nil {
		return "bad url " + e.URL
	}
	return u.Path
}

type collected struct {
	at          time.Time
	mode        string // Sec-Fetch-Mode: no-cors for sendBeacon, cors for fetch
	contentType string
	status      int
	events      []clientEvent
	body        []byte
}

// reply is a scripted answer of the collector; after the script runs out it
// answers 202.
type reply struct {
	status     int
	retryAfter string
}

type collector struct {
	header  http.Header // set on every answer
	mu      sync.Mutex
	script  []reply
	reqs    []collected
	changed chan struct{} // closed and replaced on every request
	errs    []error
}

func newCollector(script ...reply) *collector {
	return &collector{script: script, changed: make(chan struct{})}
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var evs []clientEvent
	if err == nil {
		err = json.Unmarshal(body, &evs)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("collect %s %q: %w", r.Method, body, err))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rep := reply{status: http.StatusAccepted}
	if len(c.script) > 0 {
		rep, c.script = c.script[0], c.script[1:]
	}
	c.reqs = append(c.reqs, collected{
		at: time.Now(), mode: r.Header.Get("Sec-Fetch-Mode"), contentType: r.Header.Get("Content-Type"),
		status: rep.status, events: evs, body: body,
	})
	close(c.changed)
	c.changed = make(chan struct{})
	for k, v := range c.header {
		w.Header()[k] = v
	}
	if rep.retryAfter != "" {
		w.Header().Set("Retry-After", rep.retryAfter)
	}
	w.WriteHeader(rep.status)
	_, _ = fmt.Fprintf(w, `{"accepted":%d,"rejected":[]}`, len(evs))
}

// wait blocks until cond holds for the requests so far, and returns them.
func (c *collector) wait(ctx context.Context, t *testing.T, what string, cond func([]collected) bool) []collected {
	t.Helper()
	for {
		c.mu.Lock()
		reqs, ch, errs := slices.Clone(c.reqs), c.changed, slices.Clone(c.errs)
		c.mu.Unlock()
		if len(errs) > 0 {
			t.Fatalf("collector: %v", errs)
		}
		if cond(reqs) {
			return reqs
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; got %d requests: %s", what, ctx.Err(), len(reqs), dump(reqs))
		}
	}
}

func dump(reqs []collected) string {
	b, _ := json.MarshalIndent(func() (out []map[string]any) {
		for _, r := range reqs {
			out = append(out, map[string]any{"status": r.status, "mode": r.mode, "events": r.events})
		}
		return out
	}(), "", " ")
	return string(b)
}

// accepted returns the events of the requests answered 2xx, in order.
// accepted returns the events of the answered requests, each id once, in
// order of first arrival. The tracker delivers at least once: an event sent
// by sendBeacon at pagehide stays queued (a beacon has no answer) and may
// be sent again by the next page, which the server's dedup by id drops.
// Whether that resend happens depends on timing, so it is not counted.
func accepted(reqs []collected) []clientEvent {
	var out []clientEvent
	seen := map[string]bool{}
	for _, r := range reqs {
		if r.status/100 != 2 {
			continue
		}
		for _, e := range r.events {
			if e.ID == "" || !seen[e.ID] {
				seen[e.ID] = true
				out = append(out, e)
			}
		}
	}
	return out
}

func newServer(t *testing.T, c *collector) *httptest.Server {
	t.Helper()
	return newServerWith(t, c, Config{})
}

func newServerWith(t *testing.T, c *collector, cfg Config) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/v1/collect", c)
	mux.Handle("/", Handler(cfg))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

var (
	newBrowser = browsertest.New
	newTab     = browsertest.Tab
)

func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	browsertest.Do(t, ctx, what, actions...)
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	return browsertest.Eval[T](t, ctx, js)
}

func artifactsDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("PULSE_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("artifacts dir: %v", err)
		}
		return d
	}
	return t.TempDir()
}

func TestTrackerInBrowser(t *testing.T) {
	browser := newBrowser(t)
	tests := []struct {
		name   string
		before string // script run in every new document before the tracker
		leave  string // Sec-Fetch-Mode of the flush when the page is left
		idLen  int    // length of event ids
	}{
		{"sendBeacon and randomUUID", "", "no-cors", 36},
		{"fetch keepalive without sendBeacon", `delete Navigator.prototype.sendBeacon`, "cors", 36},
		{"random ids without randomUUID", `delete Crypto.prototype.randomUUID`, "no-cors", 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each case has its own collector and browser context
			trackerFlow(t, browser, tt.before, tt.leave, tt.idLen)
		})
	}
}

// trackerFlow clicks, navigates and leaves the demo page, then checks every
// event that reached the collector.
func trackerFlow(t *testing.T, browser context.Context, before, leaveMode string, idLen int) {
	const clicks = 3
	c := newCollector()
	srv := newServer(t, c)
	tab := newTab(t, browser)
	if before != "" {
		if _, err := chromedp.Call(tab, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: before}); err != nil {
			t.Fatalf("add script: %v", err)
		}
	}

	do(t, tab, "open demo",
		chromedp.Navigate(srv.URL+"/demo/"),
		chromedp.WaitVisible(chromedp.ID("signup")),
	)
	if !eval[bool](t, tab, `typeof window.pulse.optOut === "function"`) {
		t.Fatal("tracker did not load: window.pulse.optOut missing")
	}
	for range clicks {
		do(t, tab, "click signup", chromedp.Click(chromedp.ID("signup")))
	}
	do(t, tab, "custom event and SPA routes",
		chromedp.Click(chromedp.ID("custom")),
		chromedp.Click(chromedp.ID("nav-pricing")),
		chromedp.WaitVisible(chromedp.JSPath(`[...document.querySelectorAll("h1")].filter(h => h.textContent === "Pricing")`)),
		chromedp.Click(chromedp.ID("nav-about")),
		chromedp.WaitVisible(chromedp.JSPath(`[...document.querySelectorAll("h1")].filter(h => h.textContent === "About")`)),
	)
	// Neither the same URL again nor replaceState of it is a new pageview.
	eval[any](t, tab, `history.replaceState(null, "", location.href); history.pushState(null, "", location.href); null`)

	// Everything so far is sent and acknowledged, so the page leaves with
	// nothing in flight and no batch timer running.
	want := clicks + 1 + 1 + 3 // signup clicks, buy, custom, pageviews
	c.wait(tab, t, "events before leaving", func(r []collected) bool { return len(accepted(r)) >= want-1 })
	if _, err := chromedp.Run(tab, chromedp.Poll[chromedp.Void](`localStorage.getItem("pulse_q") === "[]"`)); err != nil {
		t.Fatalf("waiting for the tracker's queue to empty: %v", err)
	}

	shot, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	file := filepath.Join(artifactsDir(t), "demo-"+strings.NewReplacer(" ", "-", "/", "-").Replace(strings.ToLower(t.Name()))+".png")
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	t.Logf("screenshot of the demo page: %s", file)

	// The last click is queued and the page left at once, in the same
	// script, so that the batch timer cannot fire first however loaded the
	// machine: only the pagehide flush (sendBeacon) can deliver it.
	// The wait below outlasts the navigation: the beacon leaves at pagehide.
	eval[any](t, tab, `document.getElementById("buy").click(); location.href = "about:blank"; null`)

	reqs := c.wait(tab, t, "all events", func(r []collected) bool { return len(accepted(r)) >= want })

	// A new load of a route (the server's SPA fallback) is one pageview with
	// the same visitor id, and resends nothing: the queue was emptied.
	do(t, tab, "reload", chromedp.Navigate(srv.URL+"/demo/pricing"), chromedp.WaitVisible(chromedp.ID("buy")))
	reqs = c.wait(tab, t, "pageview after reload", func(r []collected) bool { return len(accepted(r)) >= want+1 })
	do(t, tab, "leave page", chromedp.Navigate("about:blank"))

	evs := accepted(reqs)
	if len(evs) != want+1 {
		t.Fatalf("got %d events, want %d: %s", len(evs), want+1, dump(reqs))
	}
	ids := map[string]int{}
	var pageviews []string
	targets := map[string]int{}
	custom := 0
	for _, e := range evs {
		ids[e.ID]++
		if len(e.ID) != idLen {
			t.Errorf("event id %q has %d characters, want %d", e.ID, len(e.ID), idLen)
		}
		if e.Site != "demo" || e.TS <= 0 || e.UID == "" || e.URL == "" {
			t.Errorf("event lacks site, ts, uid or url: %+v", e)
		}
		if e.UID != evs[0].UID {
			t.Errorf("uid changed: %q then %q", evs[0].UID, e.UID)
		}
		switch e.Type {
		case "pageview":
			pageviews = append(pageviews, e.path())
		case "click":
			target, _ := e.Props["target"].(string)
			targets[target]++
		case "signup":
			custom++
			if e.Props["plan"] != "pro" || e.Props["price"] != 49.0 {
				t.Errorf("custom event props %v, want plan pro, price 49", e.Props)
			}
		default:
			t.Errorf("unexpected event type %q", e.Type)
		}
	}
	for id, n := range ids {
		if n != 1 || id == "" {
			t.Errorf("event id %q arrived %d times", id, n)
		}
	}
	if targets["signup"] != clicks || targets["buy"] != 1 || len(targets) != 2 {
		t.Errorf("click targets %v, want signup %d and buy 1", targets, clicks)
	}
	if custom != 1 {
		t.Errorf("%d custom events, want 1", custom)
	}
	if wantPV := []string{"/demo/", "/demo/pricing", "/demo/about", "/demo/pricing"}; !slices.Equal(pageviews, wantPV) {
		t.Errorf("pageviews %v, want %v", pageviews, wantPV)
	}
	leftBy := ""
	for _, r := range reqs {
		for _, e := range r.events {
			if e.Type == "click" && e.Props["target"] == "buy" && leftBy == "" {
				leftBy = r.mode // its first delivery; a later one is a resend
			}
		}
		if want := map[string]string{"no-cors": "text/plain", "cors": "text/plain;charset=UTF-8"}[r.mode]; r.contentType != want {
			t.Errorf("%s request sent Content-Type %q, want %q (no CORS preflight)", r.mode, r.contentType, want)
		}
	}
	if leftBy != leaveMode {
		t.Errorf("the click made just before leaving came in a %q request, want %q: %s", leftBy, leaveMode, dump(reqs))
	}
}

func TestTrackerRetries(t *testing.T) {
	browser := newBrowser(t)
	tests := []struct {
		name   string
		first  reply
		reload bool // load another page while the first batch waits
		resend bool // the first batch's events come again
	}{
		{"503 Retry-After is honoured and the same ids resent", reply{503, "1"}, false, true},
		{"429 Retry-After is honoured and the same ids resent", reply{429, "1"}, false, true},
		{"400 drops the batch", reply{400, ""}, false, false},
		{"413 drops the batch", reply{413, ""}, false, false},
		{"queue survives a reload while backing off", reply{503, "3600"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each case has its own collector and browser context
			c := newCollector(tt.first)
			srv := newServer(t, c)
			tab := newTab(t, browser)
			do(t, tab, "open demo", chromedp.Navigate(srv.URL+"/demo/"), chromedp.WaitVisible(chromedp.ID("signup")))
			first := c.wait(tab, t, "first batch", func(r []collected) bool { return len(r) >= 1 })[0]
			switch {
			case tt.reload:
				do(t, tab, "reload", chromedp.Navigate(srv.URL+"/demo/about"), chromedp.WaitVisible(chromedp.ID("signup")))
			case !tt.resend:
				// Something new to send, so that a second batch comes.
				do(t, tab, "click", chromedp.Click(chromedp.ID("signup")))
			}
			second := c.wait(tab, t, "second batch", func(r []collected) bool { return len(r) >= 2 })[1]
			do(t, tab, "leave page", chromedp.Navigate("about:blank"))

			if first.status != tt.first.status || second.status != http.StatusAccepted {
				t.Fatalf("statuses %d, %d: want %d, 202", first.status, second.status, tt.first.status)
			}
			got := map[string]bool{}
			for _, e := range second.events {
				got[e.ID] = true
			}
			for _, e := range first.events {
				if got[e.ID] != tt.resend {
					t.Errorf("event %s %s in the second batch: %v, want %v", e.Type, e.ID, got[e.ID], tt.resend)
				}
			}
			if tt.resend && !tt.reload {
				if wait, _ := strconv.Atoi(tt.first.retryAfter); second.at.Sub(first.at) < time.Duration(wait)*time.Second {
					t.Errorf("resent after %v, before Retry-After %ds", second.at.Sub(first.at), wait)
				}
			}
			if !tt.resend && len(second.events) != 1 {
				t.Errorf("second batch has %d events, want only the click: %s", len(second.events), dump([]collected{second}))
			}
			if tt.reload && len(second.events) != 2 {
				t.Errorf("second batch has %d events, want the stored pageview and the new one: %s", len(second.events), dump([]collected{second}))
			}
		})
	}
}

func TestTrackerOptOut(t *testing.T) {
	browser := newBrowser(t)
	tests := []struct {
		name   string
		before string // script run in every new document before the tracker
		during string // script run after load, before the clicks
	}{
		{"Do Not Track", `Object.defineProperty(Navigator.prototype, "doNotTrack", {get: () => "1"})`, ""},
		{"localStorage opt-out", `localStorage.setItem("pulse_optout", "1")`, ""},
		{"pulse.optOut()", "", `window.pulse.optOut()`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each case has its own collector and browser contexts
			c := newCollector()
			srv := newServer(t, c)
			tab := newTab(t, browser)
			if tt.before != "" {
				if _, err := chromedp.Call(tab, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: tt.before}); err != nil {
					t.Fatalf("add script: %v", err)
				}
			}
			do(t, tab, "open demo", chromedp.Navigate(srv.URL+"/demo/"), chromedp.WaitVisible(chromedp.ID("signup")))
			if tt.during != "" {
				eval[any](t, tab, tt.during+"; null")
			}
			do(t, tab, "clicks and routes",
				chromedp.Click(chromedp.ID("signup")),
				chromedp.Click(chromedp.ID("custom")),
				chromedp.Click(chromedp.ID("nav-pricing")),
			)
			queued := eval[string](t, tab, `JSON.stringify([localStorage.getItem("pulse_q"), localStorage.getItem("pulse_uid")])`)
			if tt.during == "" && queued != `[null,null]` {
				t.Errorf("opted-out tracker stored [queue, uid] = %s", queued)
			}
			do(t, tab, "leave page", chromedp.Navigate("about:blank"))

			// A control page in another browser context sends one pageview;
			// the opted-out page's flush at pagehide went before it.
			control := newTab(t, browser)
			do(t, control, "open control", chromedp.Navigate(srv.URL+"/demo/?control"), chromedp.WaitVisible(chromedp.ID("signup")))
			reqs := c.wait(control, t, "control pageview", func(r []collected) bool {
				for _, e := range accepted(r) {
					if e.URL == srv.URL+"/demo/?control" {
						return true
					}
				}
				return false
			})
			for _, e := range accepted(reqs) {
				// optOut() after load may come after the first pageview went.
				early := tt.during != "" && e.Type == "pageview" && e.path() == "/demo/"
				if e.URL != srv.URL+"/demo/?control" && !early {
					t.Errorf("opted-out page sent %s %s", e.Type, e.URL)
				}
			}
		})
	}
}
