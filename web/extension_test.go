package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pulsehq/pulse/event"
)

// These tests load a page with one tracker variant in Chromium, act on it,
// and compare every event that reached the collector with the list the
// case expects, each read as /v1/collect reads it (event.Decode, then
// Enrich): "type path props", path being the one Pulse counts.

// extPage is the page of an extension test, served at every path under
// /page/. SCRIPT is the tracker tag; OTHER the origin of a second server.
const extPage = `<!doctype html><html><head><meta charset="utf-8"><title>ext</title>
<script>window.pulse=window.pulse||function(){(pulse.q=pulse.q||[]).push(arguments)}</script>
SCRIPT
</head><body>
<a id="out" href="OTHER/landing">elsewhere</a>
<a id="out2" href="OTHER/second?q=1">elsewhere too</a>
<a id="anchor" href="#top">anchor</a>
<a id="in" href="/page/inner">inner</a>
<a id="pdf" href="/files/report.pdf?v=2#p3"><span id="pdf-label">report</span></a>
<a id="csv" href="/files/DATA.CSV">data</a>
<a id="md" href="/files/notes.md">notes</a>
<a id="html" href="/files/page.html">page</a>
<button id="signup" data-pulse-click="signup">Sign up</button>
BODY
</body></html>`

// A click handler of the page's own keeps the download links from leaving
// the page: the tracker listens before it, so it still sees the click.
const keepPage = `<script>document.addEventListener("click", function (e) { if (e.target.closest("a[href^='/']")) e.preventDefault() })</script>`

type extCase struct {
	name   string
	script string // tracker file name
	attrs  string // more attributes of the tracker tag
	body   string // more HTML at the end of the page
	open   string // path of the page opened, under the page server
	act    func(t *testing.T, tab context.Context, other string)
	want   []string // "type path props" of every event, in order of arrival
}

// js runs statements in the page.
func js(src string) func(*testing.T, context.Context, string) {
	return func(t *testing.T, tab context.Context, _ string) { eval[any](t, tab, src+"; null") }
}

func clicks(ids ...string) func(*testing.T, context.Context, string) {
	return func(t *testing.T, tab context.Context, _ string) {
		for _, id := range ids {
			do(t, tab, "click "+id, chromedp.Click(chromedp.ID(id)))
		}
	}
}

func TestTrackerExtensions(t *testing.T) {
	browser := newBrowser(t)
	const allow = "data-allow-localhost"
	tests := []extCase{
		{name: "outbound link click still navigates", script: "tracker.outbound-links.js", attrs: allow, open: "/page/",
			act: func(t *testing.T, tab context.Context, other string) {
				// A middle click counts; a right click, an anchor and a
				// link of the site do not; then a plain click leaves.
				eval[any](t, tab, `for (const b of [1, 2]) document.getElementById("out2").dispatchEvent(new MouseEvent("auxclick", {button: b, bubbles: true, cancelable: true})); null`)
				do(t, tab, "click the anchor", chromedp.Click(chromedp.ID("anchor")))
				do(t, tab, "click out", chromedp.Click(chromedp.ID("out")), chromedp.WaitVisible(chromedp.ID("landed")))
				if got := eval[string](t, tab, `location.href`); got != other+"/landing" {
					t.Errorf("after the outbound click the tab is at %s, want %s/landing", got, other)
				}
			},
			want: []string{
				`pageview /page/ `,
				`Outbound Link: Click /page/ {"url":"OTHER/second?q=1"}`,
				`Outbound Link: Click /page/ {"url":"OTHER/landing"}`,
			}},
		{name: "outbound links are not tracked without the extension", script: "tracker.js", attrs: allow, open: "/page/",
			act: func(t *testing.T, tab context.Context, _ string) {
				do(t, tab, "click out", chromedp.Click(chromedp.ID("out")), chromedp.WaitVisible(chromedp.ID("landed")))
			},
			want: []string{`pageview /page/ `}},
		{name: "file downloads of the default types", script: "tracker.file-downloads.js", attrs: allow, body: keepPage, open: "/page/",
			act: clicks("pdf-label", "csv", "md", "html", "in", "signup"),
			want: []string{
				`pageview /page/ `,
				`File Download /page/ {"url":"SRV/files/report.pdf"}`,
				`File Download /page/ {"url":"SRV/files/DATA.CSV"}`,
				`click /page/ {"target":"signup"}`,
			}},
		{name: "file-types replaces the list", script: "tracker.file-downloads.js", attrs: allow + ` file-types="md,html"`, body: keepPage, open: "/page/",
			act: clicks("pdf", "md", "html"),
			want: []string{
				`pageview /page/ `,
				`File Download /page/ {"url":"SRV/files/notes.md"}`,
				`File Download /page/ {"url":"SRV/files/page.html"}`,
			}},
		{name: "add-file-types adds to the list", script: "tracker.file-downloads.js", attrs: allow + ` add-file-types="md"`, body: keepPage, open: "/page/",
			act: clicks("pdf", "md", "html"),
			want: []string{
				`pageview /page/ `,
				`File Download /page/ {"url":"SRV/files/report.pdf"}`,
				`File Download /page/ {"url":"SRV/files/notes.md"}`,
			}},
		{name: "404 page by attribute", script: "tracker.404.js", attrs: allow + " data-404", open: "/page/missing?x=1",
			want: []string{`pageview /page/missing `, `404 /page/missing {"path":"/page/missing"}`}},
		{name: "404 page by a call before the tracker loads", script: "tracker.404.js", attrs: allow, open: "/page/gone",
			body: `<script>pulse("404")</script>`,
			want: []string{`pageview /page/gone `, `404 /page/gone {"path":"/page/gone"}`}},
		{name: "hash routing", script: "tracker.hash.js", attrs: allow, open: "/page/#/a",
			act: js(`location.hash = "#/b"; location.hash = "#/b"; history.pushState(null, "", "/page/#/c?x=1"); document.getElementById("signup").click()`),
			want: []string{
				`pageview /page/#/a `,
				`pageview /page/#/b `,
				`pageview /page/#/c?x=1 `,
				`click /page/#/c?x=1 {"target":"signup"}`,
			}},
		{name: "a new fragment is no pageview without hash routing", script: "tracker.js", attrs: allow, open: "/page/#/a",
			act:  js(`location.hash = "#/b"; history.pushState(null, "", "/page/#/c"); history.pushState(null, "", "/page/next")`),
			want: []string{`pageview /page/ `, `pageview /page/next `}},
		{name: "exclusions", script: "tracker.exclusions.js", attrs: allow + ` data-exclude="/page/private/**, /page/a*"`, open: "/page/private/x/y",
			act: js(`document.getElementById("signup").click();
				for (const p of ["/page/ab", "/page/a/b", "/page/private", "/page/public", "/page/ab/"]) history.pushState(null, "", p)`),
			// Only pageviews are excluded, as in Plausible.
			want: []string{`click /page/private/x/y {"target":"signup"}`, `pageview /page/a/b `, `pageview /page/private `, `pageview /page/public `}},
		{name: "inclusions", script: "tracker.exclusions.js", attrs: allow + ` data-include="/page/docs/**" data-exclude="/page/docs/draft"`, open: "/page/",
			act:  js(`for (const p of ["/page/docs/a/b", "/page/docs/draft", "/page/other", "/page/docs"]) history.pushState(null, "", p)`),
			want: []string{`pageview /page/docs/a/b `}},
		{name: "exclusions of hash routes", script: "tracker.hash.exclusions.js", attrs: allow + ` data-exclude="/page/#/admin**"`, open: "/page/#/home",
			act:  js(`location.hash = "#/admin/users"; location.hash = "#/about"`),
			want: []string{`pageview /page/#/home `, `pageview /page/#/about `}},
		{name: "all extensions", script: "tracker.outbound-links.hash.404.exclusions.file-downloads.js", attrs: allow + ` data-404 data-exclude="/page/#/x"`, body: keepPage, open: "/page/#/x",
			act: func(t *testing.T, tab context.Context, _ string) {
				js(`location.hash = "#/y"`)(t, tab, "")
				clicks("pdf")(t, tab, "")
				do(t, tab, "click out", chromedp.Click(chromedp.ID("out")), chromedp.WaitVisible(chromedp.ID("landed")))
			},
			want: []string{
				`404 /page/#/x {"path":"/page/"}`,
				`pageview /page/#/y `,
				`File Download /page/#/y {"url":"SRV/files/report.pdf"}`,
				`Outbound Link: Click /page/#/y {"url":"OTHER/landing"}`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each case has its own servers and browser context
			runExtCase(t, browser, tt)
		})
	}
}

// extServers starts the collector's server, which also serves page at
// /page/... (but for /page/control, the page with /tracker.js that settle
// loads), and another origin with a landing page.
func extServers(t *testing.T, c *collector, page func(srv, other string) string) (srv, other *httptest.Server) {
	t.Helper()
	other = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>landed</title><p id="landed">landed</p>`))
	}))
	t.Cleanup(other.Close)
	mux := http.NewServeMux()
	mux.Handle("/v1/collect", c)
	mux.Handle("/", Handler(Config{}))
	var html, control string
	mux.HandleFunc("/page/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path == "/page/control" {
			_, _ = w.Write([]byte(control))
			return
		}
		_, _ = w.Write([]byte(html))
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	html = page(srv.URL, other.URL)
	control = strings.NewReplacer("SCRIPT", `<script src="/tracker.js" data-site="demo" data-allow-localhost defer></script>`,
		"OTHER", other.URL, "BODY", "").Replace(extPage)
	return srv, other
}

func runExtCase(t *testing.T, browser context.Context, tt extCase) {
	c := newCollector()
	srv, other := extServers(t, c, func(srv, other string) string {
		tag := `<script src="` + srv + "/" + tt.script + `" data-site="demo" ` + tt.attrs + ` defer></script>`
		return strings.NewReplacer("SCRIPT", tag, "OTHER", other, "BODY", tt.body).Replace(extPage)
	})
	tab := newTab(t, browser)
	do(t, tab, "open page", chromedp.Navigate(srv.URL+tt.open), chromedp.WaitVisible(chromedp.ID("signup")))
	if _, err := chromedp.Run(tab, chromedp.Poll[chromedp.Void](`typeof window.pulse.optOut === "function"`)); err != nil {
		t.Fatalf("waiting for the tracker to load: %v", err)
	}
	if tt.act != nil {
		tt.act(t, tab, other.URL)
	}
	got := settle(t, browser, tab, c, srv.URL)
	r := strings.NewReplacer(srv.URL, "SRV", other.URL, "OTHER")
	for i := range got {
		got[i] = r.Replace(got[i])
	}
	if !slices.Equal(got, tt.want) {
		t.Errorf("events:\n got %q\nwant %q", got, tt.want)
	}
}

// settle leaves the page in tab, so that its pagehide flush sends what
// is queued, then loads a control page in a new browser context and waits
// for its pageview, which comes after. It returns the events before it,
// as Pulse reads them.
func settle(t *testing.T, browser, tab context.Context, c *collector, base string) []string {
	t.Helper()
	do(t, tab, "leave page", chromedp.Navigate("about:blank"))
	control := newTab(t, browser)
	do(t, control, "open control", chromedp.Navigate(base+"/page/control"), chromedp.WaitVisible(chromedp.ID("signup")))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	c.wait(ctx, t, "the control page's pageview", func(reqs []collected) bool {
		got = collectRead(t, reqs)
		return len(got) > 0 && got[len(got)-1] == "pageview /page/control "
	})
	do(t, control, "leave control", chromedp.Navigate("about:blank"))
	return got[:len(got)-1]
}

// collectRead reads the bodies of the requests answered 2xx as /v1/collect
// does, each event id once, and describes each event as "type path props".
// An event that /v1/collect would refuse fails the test.
func collectRead(t *testing.T, reqs []collected) []string {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	for _, r := range reqs {
		if r.status/100 != 2 {
			continue
		}
		evs, _, rejects, err := event.Decode(r.body, event.Limits{})
		if err != nil || len(rejects) > 0 {
			t.Fatalf("/v1/collect refuses %s: %v %+v", r.body, err, rejects)
		}
		for _, e := range evs {
			if seen[e.ID] {
				continue
			}
			seen[e.ID] = true
			event.Enrich(&e, time.Now(), userAgent)
			props := ""
			if len(e.Props) > 0 {
				b, _ := json.Marshal(e.Props)
				props = string(b)
			}
			out = append(out, e.Type+" "+e.Path+" "+props)
		}
	}
	return out
}

// TestTrackerLocalhost: on localhost, 127.x.y.z, [::1] and file: pages the
// tracker sends and stores nothing, in every variant, unless its tag has
// data-allow-localhost.
func TestTrackerLocalhost(t *testing.T) {
	browser := newBrowser(t)
	tests := []struct {
		name   string
		host   string // replaces 127.0.0.1 in the page's URL; "file" for a file: page
		script string
		attrs  string
		sent   bool
	}{
		{"127.0.0.1", "127.0.0.1", "tracker.js", "", false},
		{"localhost", "localhost", "tracker.js", "", false},
		{"localhost, all extensions", "localhost", "tracker.404.exclusions.file-downloads.hash.outbound-links.js", "data-404", false},
		{"file page", "file", "tracker.js", "", false},
		{"127.0.0.1 allowed", "127.0.0.1", "tracker.js", "data-allow-localhost", true},
		{"localhost allowed", "localhost", "tracker.hash.js", "data-allow-localhost", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each case has its own servers and browser context
			c := newCollector()
			srv, _ := extServers(t, c, func(srv, other string) string {
				tag := `<script src="` + srv + "/" + tt.script + `" data-site="demo" data-endpoint="` + srv + `/v1/collect" ` + tt.attrs + ` defer></script>`
				return strings.NewReplacer("SCRIPT", tag, "OTHER", other, "BODY", "").Replace(extPage)
			})
			open := strings.Replace(srv.URL, "127.0.0.1", tt.host, 1) + "/page/"
			if tt.host == "file" {
				res, err := http.Get(srv.URL + "/page/")
				if err != nil {
					t.Fatal(err)
				}
				var page strings.Builder
				_, _ = io.Copy(&page, res.Body)
				res.Body.Close()
				file := filepath.Join(t.TempDir(), "page.html")
				if err := os.WriteFile(file, []byte(page.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				open = "file://" + file
			}
			tab := newTab(t, browser)
			do(t, tab, "open page", chromedp.Navigate(open), chromedp.WaitVisible(chromedp.ID("signup")))
			if _, err := chromedp.Run(tab, chromedp.Poll[chromedp.Void](`typeof window.pulse.optOut === "function"`)); err != nil {
				t.Fatalf("waiting for the tracker to load: %v", err)
			}
			do(t, tab, "click", chromedp.Click(chromedp.ID("signup")))
			eval[any](t, tab, `pulse("custom"); history.pushState(null, "", "#/route"); null`)
			stored := eval[string](t, tab, `JSON.stringify([localStorage.getItem("pulse_q"), localStorage.getItem("pulse_uid")])`)
			got := settle(t, browser, tab, c, srv.URL)
			if tt.sent {
				if !slices.Contains(got, "pageview /page/ ") {
					t.Errorf("allowed page sent %q, want its pageview", got)
				}
				return
			}
			if len(got) > 0 {
				t.Errorf("page on %s sent %q", tt.host, got)
			}
			if stored != `[null,null]` {
				t.Errorf("page on %s stored [queue, uid] = %s", tt.host, stored)
			}
		})
	}
}
