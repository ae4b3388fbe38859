package systemtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pulsehq/pulse/internal/browsertest"
)

// TestDashboardEndToEnd is what a user sees: the live dashboard open in one
// tab, the demo site with the tracker in another; clicks on a tracked
// button, two single-page-app routes, then the page is left (the sendBeacon
// path). The dashboard (today, in the site's time zone, which the URL does
// not name) must show the exact counts, from its live queries' WebSocket
// deltas alone: the pageviews top stat, the clicks in the goals panel and
// the pricing page in the pages panel. How long that took after the page
// was left is logged, not asserted (docs/benchmarks.md measures
// freshness). A screenshot is kept in $PULSE_ARTIFACTS.
func TestDashboardEndToEnd(t *testing.T) {
	s := newServer(t, "--site-timezones", "demo=Asia/Kolkata")
	browser := browsertest.New(t)

	dash := browsertest.Tab(t, browser)
	browsertest.Do(t, dash, "open dashboard",
		chromedp.Navigate(s.url("/?site=demo&period=day&token="+readToken)),
		chromedp.WaitVisible(`#conn-state[data-state="open"]`),
		chromedp.WaitVisible(`#panel-goals[data-state="ready"]`),
	)
	if tz := browsertest.Eval[string](t, dash, `document.querySelector("#tz").value`); tz != "Asia/Kolkata" {
		t.Errorf("the dashboard opened in %q, want the site's time zone Asia/Kolkata", tz)
	}

	const clicks = 7
	demo := browsertest.Tab(t, browser)
	browsertest.Do(t, demo, "open demo", chromedp.Navigate(s.url("/demo/")), chromedp.WaitVisible(`#signup`))
	for i := 0; i < clicks; i++ {
		browsertest.Do(t, demo, "click signup", chromedp.Click(`#signup`))
	}
	browsertest.Do(t, demo, "route pricing", chromedp.Click(`#nav-pricing`), chromedp.WaitVisible(`#buy`))
	browsertest.Do(t, demo, "route about", chromedp.Click(`#nav-about`))
	browsertest.Do(t, demo, "leave demo", chromedp.Navigate("about:blank"))
	left := time.Now()

	// Three pageviews (/demo/, /demo/pricing, /demo/about) and the clicks.
	want := map[string]string{
		`#stat-pageviews`: "3",
		`#list-goals li[data-value="click"] [data-metric="events"]`:            fmt.Sprint(clicks),
		`#list-pages li[data-value="/demo/pricing"] [data-metric="pageviews"]`: "1",
	}
	const deadline = time.Minute // a guard against a dashboard that never shows them
	var got map[string]string
	for {
		got = map[string]string{}
		for sel := range want {
			got[sel] = browsertest.Eval[string](t, dash, fmt.Sprintf(
				`(e => e ? (e.dataset.value ?? e.dataset.count ?? e.textContent).trim() : "missing")(document.querySelector(%q))`, sel))
		}
		if equal(got, want) {
			break
		}
		if time.Since(left) > deadline {
			screenshot(t, dash, "dashboard-failed.png")
			t.Fatalf("dashboard after %s shows %v, want %v", deadline, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("dashboard exact %s after the page was left", time.Since(left).Round(time.Millisecond))
	fresh := browsertest.Eval[string](t, dash, `document.querySelector("#freshness").textContent`)
	t.Logf("freshness shown: %s", fresh)
	screenshot(t, dash, "dashboard.png")
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("PULSE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Errorf("screenshot: %v", err)
	}
	t.Logf("screenshot %s", path)
}
