package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pulsehq/pulse/internal/browsertest"
	"github.com/pulsehq/pulse/redisagg"
)

// TestPlausibleAPI sends events in Plausible's Events API format to the
// built binary, first by hand in both key forms, then from Plausible's
// official tracker (npm @plausible-analytics/tracker, installed by
// web/build.sh) in headless Chromium, and checks that Pulse counts each
// exactly: by the names Plausible's goals use, one event per site of a
// domain list, and engagement events in no built-in metric; and that the
// Stats API (POST /v1/stats) counts them by event:goal.
func TestPlausibleAPI(t *testing.T) {
	s := newServer(t)
	t.Run("by hand", func(t *testing.T) { testPlausibleByHand(t, s) })
	t.Run("official tracker", func(t *testing.T) { testPlausibleTracker(t, s) })
}

// apiEvent posts body to /api/event as contentType and returns the status,
// the body and the X-Plausible-Dropped header of the answer.
func apiEvent(t *testing.T, ctx context.Context, s *server, body, contentType string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url("/api/event"), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", browsertest.UserAgent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /api/event: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("X-Plausible-Dropped")
}

func testPlausibleByHand(t *testing.T, s *server) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	const json, text = "application/json", "text/plain"
	sends := []struct {
		body, contentType string
		status            int
		answer, dropped   string
	}{
		// Full keys, as server-side SDKs send them.
		{`{"name":"pageview","url":"https://plapi.test/pricing","domain":"plapi","referrer":"https://news.example/x","props":{"plan":"pro"}}`, json, 202, "ok", ""},
		// Short keys as text/plain, as the trackers send them.
		{`{"n":"pageview","u":"https://plapi.test/","d":"plapi","r":null,"v":36}`, text, 202, "ok", ""},
		{`{"n":"pageview","u":"https://plapi.test/","d":"plapi","r":null,"v":36}`, text, 202, "ok", ""},
		// One event per site of the list.
		{`{"n":"Signup","u":"https://plapi.test/join","d":"plapi,plapi2","p":{"plan":"free","seats":3}}`, text, 202, "ok", ""},
		{`{"n":"Outbound Link: Click","u":"https://plapi.test/","d":"plapi","m":"{\"url\":\"https://x.test/\"}"}`, text, 202, "ok", ""},
		{`{"n":"Purchase","u":"https://plapi.test/buy","d":"plapi","$":{"amount":"15.99","currency":"USD"}}`, text, 202, "ok", ""},
		{`{"n":404,"u":"https://plapi.test/gone","d":"plapi"}`, text, 202, "ok", ""},
		// Engagement: accepted and archived, counted by no built-in metric.
		{`{"n":"engagement","u":"https://plapi.test/","d":"plapi","sd":80,"e":4200}`, text, 202, "ok", ""},
		{`{"n":"engagement","u":"https://plapi.test/pricing","d":"plapi","sd":20,"e":900}`, text, 202, "ok", ""},
		// Refused: a bad body is a 400 naming the field; nothing counts.
		{`{"n":"pageview","d":"plapi"}`, text, 400, `{"errors":{"url":["is required"]}}`, ""},
		{`{"n":"engagement","u":"https://plapi.test/","d":"plapi"}`, text, 400, `at least one of 'sd' or 'e'`, ""},
	}
	for i, sd := range sends {
		status, answer, dropped := apiEvent(t, ctx, s, sd.body, sd.contentType)
		if status != sd.status || !strings.Contains(answer, sd.answer) || dropped != sd.dropped {
			t.Errorf("send %d: %d %q dropped %q, want %d %q dropped %q", i, status, answer, dropped, sd.status, sd.answer, sd.dropped)
		}
	}
	wantCounts(t, ctx, s, "plapi", "events", "type", map[string]int64{
		"pageview": 3, "Signup": 1, "Outbound Link: Click": 1, "Purchase": 1, "404": 1,
	})
	wantCounts(t, ctx, s, "plapi", "pageviews", "path", map[string]int64{"/": 2, "/pricing": 1})
	wantCounts(t, ctx, s, "plapi", "pageviews", "referrer", map[string]int64{"news.example": 1, "(none)": 2})
	wantCounts(t, ctx, s, "plapi2", "events", "type", map[string]int64{"Signup": 1})
	wantTop(t, ctx, s, "plapi", "events", "type", map[string]int64{
		"pageview": 3, "Signup": 1, "Outbound Link: Click": 1, "Purchase": 1, "404": 1,
	})
	wantGoals(t, ctx, s, "plapi", map[string]int64{
		"pageview": 3, "Signup": 1, "Outbound Link: Click": 1, "Purchase": 1, "404": 1,
	})
	wantGoals(t, ctx, s, "plapi2", map[string]int64{"Signup": 1})
}

// wantGoals waits until the Stats API's events of site by event:goal
// over the last hours equal want exactly (every goal, nothing else), or
// fails.
func wantGoals(t *testing.T, ctx context.Context, s *server, site string, want map[string]int64) {
	t.Helper()
	now := time.Now()
	body := fmt.Sprintf(`{"site_id":%q,"metrics":["events"],"dimensions":["event:goal"],"date_range":[%q,%q]}`,
		site, now.Add(-2*time.Hour).UTC().Format(time.RFC3339), now.Add(time.Hour).UTC().Format(time.RFC3339))
	var got map[string]int64
	for {
		code, b, err := s.postStats(ctx, []byte(body))
		if err != nil || code != 200 {
			t.Fatalf("stats of %s by event:goal: %d %s %v", site, code, b, err)
		}
		var a statsAnswer
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		got = map[string]int64{}
		for _, r := range a.Results {
			n, _ := r.Metrics[0].(float64)
			got[r.Dimensions[0]] = int64(n)
		}
		if reflect.DeepEqual(got, want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Stats API events of %s by event:goal: %v, want %v", site, got, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// wantCounts waits until metric of site, grouped by dim over the last
// hour, equals want exactly (every value, nothing else), or fails.
func wantCounts(t *testing.T, ctx context.Context, s *server, site, metric, dim string, want map[string]int64) {
	t.Helper()
	var got map[string]int64
	now := time.Now()
	q := queryValues(site, metric, "1h", dim, now.Add(-2*time.Hour).UnixMilli(), now.Add(time.Hour).UnixMilli())
	for {
		var res queryResult
		if err := s.get(ctx, "/v1/query", q, &res); err != nil {
			t.Fatalf("query %s %s by %s: %v", site, metric, dim, err)
		}
		got = map[string]int64{}
		for _, se := range res.Series {
			for _, p := range se.Points {
				got[se.Labels[dim]] += int64(p[1])
			}
		}
		if reflect.DeepEqual(got, want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s of %s by %s: %v, want %v", metric, site, dim, got, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// wantTop checks /v1/top of metric by dim for site against want.
func wantTop(t *testing.T, ctx context.Context, s *server, site, metric, dim string, want map[string]int64) {
	t.Helper()
	var res struct {
		Top []redisagg.TopEntry `json:"top"`
	}
	q := url.Values{"site": {site}, "metric": {metric}, "dim": {dim}, "from": {"-1h"}, "k": {"100"}}
	if err := s.get(ctx, "/v1/top", q, &res); err != nil {
		t.Fatalf("top %s by %s: %v", metric, dim, err)
	}
	got := map[string]int64{}
	for _, e := range res.Top {
		got[e.Value] = e.Count
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("top %s of %s by %s: %v, want %v", metric, site, dim, got, want)
	}
}

// trackerPage is a shop page with Plausible's npm tracker, set up as its
// README says, sending to Pulse. captureOnLocalhost because the page is
// served from 127.0.0.1 (the tracker ignores localhost otherwise, and
// browsers driven by automation).
const trackerPage = `<!doctype html>
<html><head><title>shop</title></head><body>
<button id="signup">Sign up</button>
<script type="module">
import { init, track } from '/plausible.js'
window.answers = []
init({ domain: 'pltracker', endpoint: %q, captureOnLocalhost: true })
document.getElementById('signup').addEventListener('click', () =>
  track('Signup', { props: { plan: 'pro' }, revenue: { amount: 15.99, currency: 'USD' },
    callback: (r) => window.answers.push(r && r.status) }))
window.trackerReady = true
</script>
</body></html>`

// trackerScript is the official tracker as npm installs it.
func trackerScript(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join("..", "web", "node_modules", "@plausible-analytics", "tracker", "plausible.js")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the official Plausible tracker is not installed (%v): run web/build.sh, which runs npm ci in web/", err)
	}
	return b
}

func testPlausibleTracker(t *testing.T, s *server) {
	script := trackerScript(t)
	page := fmt.Sprintf(trackerPage, s.url("/api/event"))
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/plausible.js":
			w.Header().Set("Content-Type", "text/javascript")
			http.ServeContent(w, r, "plausible.js", time.Time{}, bytes.NewReader(script))
		case "/shop":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, page)
		default:
			http.NotFound(w, r)
		}
	}))
	defer site.Close()

	browser := browsertest.New(t)
	tab := browsertest.Tab(t, browser)
	browsertest.Do(t, tab, "open the shop page",
		chromedp.Navigate(site.URL+"/shop"),
		chromedp.WaitVisible(`#signup`),
	)
	poll(t, tab, `window.trackerReady === true`)
	const clicks = 2
	for i := 0; i < clicks; i++ {
		browsertest.Do(t, tab, "click signup", chromedp.Click(`#signup`))
	}
	poll(t, tab, fmt.Sprintf(`window.answers.length === %d`, clicks))
	if got := browsertest.Eval[[]int](t, tab, `window.answers`); !reflect.DeepEqual(got, []int{202, 202}) {
		t.Errorf("the tracker saw statuses %v, want 202 for each", got)
	}
	// Leaving the page makes the tracker send its engagement event.
	browsertest.Do(t, tab, "leave the page", chromedp.Navigate("about:blank"))

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	wantCounts(t, ctx, s, "pltracker", "events", "type", map[string]int64{"pageview": 1, "Signup": clicks})
	wantCounts(t, ctx, s, "pltracker", "pageviews", "path", map[string]int64{"/shop": 1})
	wantCounts(t, ctx, s, "pltracker", "pageviews", "device", map[string]int64{"desktop": 1})
	wantGoals(t, ctx, s, "pltracker", map[string]int64{"pageview": 1, "Signup": clicks})
}

// poll waits until expr is true in the page.
func poll(t *testing.T, tab context.Context, expr string) {
	t.Helper()
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](expr)); err != nil {
		t.Fatalf("wait for %s: %v", expr, err)
	}
}
