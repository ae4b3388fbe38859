package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/pulsehq/pulse/internal/browsertest"
)

// dashUAs are real User-Agents of the fixture, so browsers and OSes differ.
const (
	dashFirefoxLinux  = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	dashChromeAndroid = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
)

// TestDashboardLive drives the dashboard as a user does, through the built
// binary: clicks on the demo page appear in the open dashboard without a
// reload; choosing 7 days and then another time zone redraws the chart as
// the Stats API's time query answers; activating a source row filters
// every panel to what POST /v1/stats answers with that filter, and the
// keyboard switches tabs and removes it; a stopped server shows as
// "stalled". A screenshot of each step goes to $PULSE_ARTIFACTS.
func TestDashboardLive(t *testing.T) {
	// Visit fields come from the client address behind a trusted proxy;
	// events of the past days need the lateness raised.
	s := newServer(t, "--trusted-proxies", trustedLoopbackGW, "--allowed-lateness", "168h")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	sendDashboardFixture(t, ctx, s)

	browser := browsertest.New(t)
	dash := browsertest.Tab(t, browser)
	browsertest.Do(t, dash, "open dashboard",
		chromedp.Navigate(s.url("/?period=day&tz=UTC&token="+readToken)),
		chromedp.WaitVisible(`#conn-state[data-state="open"]`),
		chromedp.WaitVisible(`#panel-pages[data-state="ready"]`),
		chromedp.WaitVisible(`#stat-pageviews[data-value]:not([data-value=""])`),
	)
	if u := browsertest.Eval[string](t, dash, `location.href`); strings.Contains(u, readToken) {
		t.Errorf("the token stayed in the address bar: %s", u)
	}

	dashLiveClicks(t, ctx, s, dash, browser)
	dashRangeAndZone(t, ctx, s, dash)
	dashSourceFilter(t, ctx, s, dash, map[string]any{"date_range": "7d", "timezone": "Asia/Tokyo"})
	dashStall(t, ctx, s, dash)
}

// sendDashboardFixture sends visits from several sources, browsers and
// countries (through the trusted proxy), today and on past days, and
// waits until the Stats API counts them.
func sendDashboardFixture(t *testing.T, ctx context.Context, s *server) {
	t.Helper()
	now := time.Now().UTC()
	midnight := now.Truncate(24 * time.Hour)
	// 23:30 UTC four days ago is the next day in Tokyo: the day chart
	// moves with the time zone.
	lateEvening := midnight.AddDate(0, 0, -3).Add(-30 * time.Minute).UnixMilli()
	yesterday := midnight.AddDate(0, 0, -1).Add(20 * time.Hour).UnixMilli()
	type ev struct {
		client, ua, url, ref string
		ts                   int64
	}
	evs := []ev{
		{"80.156.0.1", dashFirefoxLinux, "https://shop.example/pricing", "https://news.ycombinator.com/item?id=1", 0},
		{"80.156.0.1", dashFirefoxLinux, "https://shop.example/docs", "https://shop.example/pricing", 0},
		{"8.8.8.8", dashChromeAndroid, "https://shop.example/", "https://news.ycombinator.com/", 0},
		{"80.156.0.2", dashChromeAndroid, "https://shop.example/pricing", "https://www.google.com/", 0},
		{"192.168.1.20", dashFirefoxLinux, "https://shop.example/?utm_source=newsletter&utm_medium=email", "", 0},
		{"80.156.0.3", dashFirefoxLinux, "https://shop.example/", "https://news.ycombinator.com/", lateEvening},
		{"8.8.4.4", dashChromeAndroid, "https://shop.example/docs", "https://www.google.com/", yesterday},
	}
	for i, e := range evs {
		body := fmt.Sprintf(`{"id":"dash-%d","site":"demo","type":"pageview","url":%q,"ref":%q,"ts":%d}`, i, e.url, e.ref, e.ts)
		code, _, err := s.postFrom(ctx, []byte(body), e.ua, e.client)
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusAccepted {
			t.Fatalf("event %d: status %d", i, code)
		}
	}
	waitUntil(t, ctx, "the fixture counted", func() (bool, string) {
		a := dashStats(t, ctx, s, map[string]any{"metrics": []string{"pageviews"}, "date_range": "7d", "timezone": "UTC"})
		got := rowMap(a)[""]
		return reflect.DeepEqual(got, []float64{float64(len(evs))}), fmt.Sprint(got)
	})
}

// dashLiveClicks clicks around the demo page and waits until the open
// dashboard's top stats and pages panel show what the Stats API counts.
func dashLiveClicks(t *testing.T, ctx context.Context, s *server, dash, browser context.Context) {
	demo := browsertest.Tab(t, browser)
	browsertest.Do(t, demo, "open demo", chromedp.Navigate(s.url("/demo/")), chromedp.WaitVisible(`#signup`))
	browsertest.Do(t, demo, "route pricing", chromedp.Click(`#nav-pricing`), chromedp.WaitVisible(`#buy`))
	for range 3 {
		browsertest.Do(t, demo, "click signup", chromedp.Click(`#signup`))
	}
	browsertest.Do(t, demo, "route about", chromedp.Click(`#nav-about`))
	browsertest.Do(t, demo, "leave demo", chromedp.Navigate("about:blank"))

	today := map[string]any{"date_range": "day", "timezone": "UTC"}
	waitUntil(t, ctx, "the clicks live in the dashboard", func() (bool, string) {
		top := rowMap(dashStats(t, ctx, s, with(today, "metrics", []string{"visitors", "pageviews"})))[""]
		pages := rowMap(dashStats(t, ctx, s, panelBody(today, "event:page", "visitors", "pageviews")))
		goals := rowMap(dashStats(t, ctx, s, with(panelBody(today, "event:goal", "visitors", "events"),
			"filters", [][]any{{"is_not", "event:goal", []string{"pageview"}}})))
		gotTop := []float64{dashValue(t, dash, `#stat-visitors`), dashValue(t, dash, `#stat-pageviews`)}
		// The demo's routes and clicks are in, and the dashboard shows
		// what the Stats API answers.
		ok := len(pages["/demo/about"]) == 2 && reflect.DeepEqual(goals["click"], []float64{1, 3}) &&
			reflect.DeepEqual(gotTop, top) &&
			reflect.DeepEqual(dashPanel(t, dash, "pages"), pages) && reflect.DeepEqual(dashPanel(t, dash, "goals"), goals)
		return ok, fmt.Sprintf("top stats %v, API %v; pages %v, API %v; goals %v, API %v",
			gotTop, top, dashPanel(t, dash, "pages"), pages, dashPanel(t, dash, "goals"), goals)
	})
	screenshot(t, dash, "dashboard-1-live-clicks.png")
}

// dashSourceFilter activates the Hacker News row of the sources panel and
// checks that every panel shows the Stats API's answer under that filter,
// over the dashboard's range (view: date_range and timezone).
func dashSourceFilter(t *testing.T, ctx context.Context, s *server, dash context.Context, view map[string]any) {
	row := `#list-sources li[data-value="Hacker News"] button.row`
	browsertest.Do(t, dash, "filter by source", chromedp.WaitVisible(row), chromedp.Click(row),
		chromedp.WaitVisible(`#filters button.chip[data-dim="visit:source"][data-value="Hacker News"]`))
	if u := browsertest.Eval[string](t, dash, `location.search`); !strings.Contains(u, "f=visit:source,is,Hacker") || !strings.Contains(u, "period=7d") {
		t.Errorf("the URL does not carry the filter: %s", u)
	}
	filtered := with(view, "filters", [][]any{{"is", "visit:source", []string{"Hacker News"}}})
	panels := map[string][]any{
		"pages":     {"event:page", "visitors", "pageviews"},
		"sources":   {"visit:source", "visitors"},
		"countries": {"visit:country", "visitors"},
		"devices":   {"visit:browser", "visitors"},
	}
	waitUntil(t, ctx, "every panel filtered", func() (bool, string) {
		var diffs []string
		for name, p := range panels {
			ms := make([]string, len(p)-1)
			for i := range ms {
				ms[i] = p[i+1].(string)
			}
			want := rowMap(dashStats(t, ctx, s, panelBody(filtered, p[0].(string), ms...)))
			if got := dashPanel(t, dash, name); !reflect.DeepEqual(got, want) || len(want) == 0 {
				diffs = append(diffs, fmt.Sprintf("%s shows %v, API %v", name, got, want))
			}
		}
		top := rowMap(dashStats(t, ctx, s, with(filtered, "metrics", []string{"visitors", "pageviews"})))[""]
		if got := []float64{dashValue(t, dash, `#stat-visitors`), dashValue(t, dash, `#stat-pageviews`)}; !reflect.DeepEqual(got, top) {
			diffs = append(diffs, fmt.Sprintf("top stats %v, API %v", got, top))
		}
		return len(diffs) == 0, strings.Join(diffs, "; ")
	})
	screenshot(t, dash, "dashboard-4-source-filter.png")

	// By keyboard: the arrow key moves to the entry pages tab, whose rows
	// are the Stats API's visits by entry page under the filter; Enter on
	// the chip removes the filter.
	browsertest.Do(t, dash, "entry pages tab by keyboard",
		chromedp.Focus(`#tabs-pages [role=tab][aria-selected="true"]`), chromedp.KeyEvent(kb.ArrowRight),
		chromedp.WaitVisible(`#panel-pages[data-dim="visit:entry_page"][data-state="ready"]`))
	waitUntil(t, ctx, "entry pages filtered", func() (bool, string) {
		want := rowMap(dashStats(t, ctx, s, panelBody(filtered, "visit:entry_page", "visits", "visitors")))
		got := dashPanel(t, dash, "pages")
		return reflect.DeepEqual(got, want) && len(want) > 0, fmt.Sprintf("entry pages %v, API %v", got, want)
	})
	if u := browsertest.Eval[string](t, dash, `location.search`); !strings.Contains(u, "tab_pages=visit:entry_page") {
		t.Errorf("the URL does not carry the tab: %s", u)
	}
	screenshot(t, dash, "dashboard-5-entry-pages.png")
	browsertest.Do(t, dash, "remove the filter by keyboard", chromedp.Focus(`#filters button.chip`), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitNotPresent(`#filters button.chip`))
	if u := browsertest.Eval[string](t, dash, `location.search`); strings.Contains(u, "f=") {
		t.Errorf("the URL still carries a filter: %s", u)
	}
}

// dashStall stops the server (SIGSTOP): the freshness indicator must turn
// from healthy to "stalled" while the connection stays open, and back
// once the server runs again.
func dashStall(t *testing.T, ctx context.Context, s *server, dash context.Context) {
	state := func() string {
		return browsertest.Eval[string](t, dash, `document.getElementById("freshness").dataset.state`)
	}
	waitUntil(t, ctx, "a healthy connection", func() (bool, string) {
		st := state()
		return st == "live" || st == "quiet", st
	})
	s.signal(t, syscall.SIGSTOP)
	waitUntil(t, ctx, "stalled while the server is stopped", func() (bool, string) {
		st := state()
		return st == "stalled", st
	})
	screenshot(t, dash, "dashboard-6-stalled.png")
	s.signal(t, syscall.SIGCONT)
	waitUntil(t, ctx, "healthy again", func() (bool, string) {
		st := state()
		return st == "live" || st == "quiet", st
	})
}

// dashRangeAndZone picks 7 days, then Tokyo's time zone, and compares the
// chart with the Stats API's time:day query each time.
func dashRangeAndZone(t *testing.T, ctx context.Context, s *server, dash context.Context) {
	var seen []string
	for i, tz := range []string{"UTC", "Asia/Tokyo"} {
		browsertest.Do(t, dash, "pick 7d in "+tz, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
			for (const [id, v] of [["period", "7d"], ["tz", %q]]) {
				const e = document.getElementById(id);
				e.value = v;
				e.dispatchEvent(new Event("change", {bubbles: true}));
			}
		})()`, tz)))
		body := map[string]any{"metrics": []string{"visitors"}, "date_range": "7d", "timezone": tz,
			"dimensions": []string{"time:day"}, "include": map[string]bool{"time_labels": true}}
		var got string
		waitUntil(t, ctx, "the 7 day chart in "+tz, func() (bool, string) {
			a := dashStats(t, ctx, s, body)
			want := make([]float64, len(a.Meta.TimeLabels))
			for j, l := range a.Meta.TimeLabels {
				if r, ok := rowMap(a)[l]; ok {
					want[j] = r[0]
				}
			}
			wantJSON, _ := json.Marshal([]any{a.Meta.TimeLabels, want})
			got = browsertest.Eval[string](t, dash, `(e => e.dataset.dimension === "time:day" && e.dataset.state === "ready" ?
				"[" + e.dataset.labels + "," + e.dataset.visitors + "]" : "not ready")(document.getElementById("main-chart"))`)
			return got == string(wantJSON), fmt.Sprintf("chart %s, API %s", got, wantJSON)
		})
		seen = append(seen, got)
		screenshot(t, dash, fmt.Sprintf("dashboard-%d-7d-%s.png", 2+i, strings.ReplaceAll(tz, "/", "-")))
	}
	if seen[0] == seen[1] {
		t.Errorf("the chart is the same in UTC and Tokyo: %s", seen[0])
	}
	if u := browsertest.Eval[string](t, dash, `location.search`); !strings.Contains(u, "period=7d") || !strings.Contains(u, "tz=Asia/Tokyo") {
		t.Errorf("the URL does not carry the range and zone: %s", u)
	}
}

// panelBody is a panel's query: the dimension's top 10 by the first metric.
func panelBody(base map[string]any, dim string, metrics ...string) map[string]any {
	q := with(with(base, "metrics", metrics), "dimensions", []string{dim})
	return with(with(q, "order_by", [][]string{{metrics[0], "desc"}}), "pagination", map[string]int{"limit": 10})
}

// with returns a copy of m with k set to v; filters are appended.
func with(m map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for kk, vv := range m {
		out[kk] = vv
	}
	if f, ok := m[k].([][]any); ok && k == "filters" {
		v = append(append([][]any{}, f...), v.([][]any)...)
	}
	out[k] = v
	return out
}

// dashStats asks POST /v1/stats for site demo.
func dashStats(t *testing.T, ctx context.Context, s *server, body map[string]any) statsAnswer {
	t.Helper()
	body = with(body, "site_id", "demo")
	b, _ := json.Marshal(body)
	code, resp, err := s.postStats(ctx, b)
	if err != nil || code != http.StatusOK {
		t.Fatalf("POST /v1/stats %s: %d %v %s", b, code, err, resp)
	}
	var a statsAnswer
	if err := json.NewDecoder(bytes.NewReader(resp)).Decode(&a); err != nil {
		t.Fatalf("decode %s: %v", resp, err)
	}
	return a
}

// rowMap is an answer's rows by their dimension values joined with "|".
func rowMap(a statsAnswer) map[string][]float64 {
	out := map[string][]float64{}
	for _, r := range a.Results {
		vs := make([]float64, len(r.Metrics))
		for i, m := range r.Metrics {
			vs[i], _ = m.(float64)
		}
		out[strings.Join(r.Dimensions, "|")] = vs
	}
	return out
}

// dashPanel reads a panel's rows as the dashboard shows them.
func dashPanel(t *testing.T, dash context.Context, name string) map[string][]float64 {
	t.Helper()
	js := fmt.Sprintf(`Object.fromEntries([...document.querySelectorAll("#list-%s li[data-value]")].map(li =>
		[li.dataset.value, [...li.querySelectorAll("[data-metric]")].map(e => Number(e.dataset.value))]))`, name)
	return browsertest.Eval[map[string][]float64](t, dash, js)
}

// dashValue reads an element's data-value as a number (-1 when empty).
func dashValue(t *testing.T, dash context.Context, sel string) float64 {
	t.Helper()
	return browsertest.Eval[float64](t, dash, fmt.Sprintf(`(e => e && e.dataset.value !== "" ? Number(e.dataset.value) : -1)(document.querySelector(%q))`, sel))
}

// waitUntil polls cond until it holds or ctx ends; then the test fails
// with cond's last description.
func waitUntil(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	for {
		ok, desc := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not reached: %s", what, desc)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
