package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pulsehq/pulse/internal/browsertest"
)

// attackLateResend is the tracker's late resend (issue 11 item 11), in
// Chromium: a page's batch reaches Pulse and is accepted, but the answer
// never reaches the page, which closes; the batch stays in localStorage.
// A later visit within the tracker's horizon (0.8 of the dedup window)
// resends it and the server drops the duplicate; a visit after the server
// forgot the id (past the window) must not resend it. Events queued while
// offline, older than the window, are dropped too. Each case is counted by
// the server. The server needs a --dedup-window of at most 30 s (it is
// waited out once).
func attackLateResend(t *testing.T, ctx context.Context, s *server) string {
	window, err := dedupWindow(ctx, s)
	if err != nil || window > 30*time.Second {
		t.Errorf("dedup window %v (%v): want a Pulse-Dedup-Window of at most 30s", window, err)
		return "late resend: not run (needs --dedup-window of at most 30s)"
	}
	browser := browsertest.New(t)
	run := strconv.FormatInt(time.Now().UnixNano(), 36) // paths unique to this run
	past := newLateCase(t, ctx, s, browser, "/demo/late-"+run+"-past", proxyHold)
	offline := newLateCase(t, ctx, s, browser, "/demo/late-"+run+"-offline", proxyOffline)
	within := newLateCase(t, ctx, s, browser, "/demo/late-"+run+"-within", proxyHold)

	// Within the horizon: resent, and deduplicated by the server.
	dups := s.metricValue(t, `pulse_aggregator_events_total{outcome="duplicate"}`)
	resent := within.revisit(t, ctx)
	if resent == 0 {
		t.Errorf("%s: the held batch was not resent by a visit %v after it, within 0.8 of the window: %s",
			within.path, time.Since(within.proxy.firstAt()).Round(time.Millisecond), within.proxy.dump())
	}
	waitFor(ctx, t, "the resend deduplicated", func() bool {
		return s.metricValue(t, `pulse_aggregator_events_total{outcome="duplicate"}`) >= dups+float64(resent)
	})
	withinCount := within.counted(t, ctx, 1)

	// Past the window: the server has forgotten the ids, so a resend would
	// count twice; the tracker must drop them instead.
	if wait := time.Until(past.proxy.firstAt().Add(window + time.Second)); wait > 0 {
		time.Sleep(wait)
	}
	if n := past.revisit(t, ctx); n != 0 {
		t.Errorf("%s: %d held events resent after the dedup window: %s", past.path, n, past.proxy.dump())
	}
	pastCount := past.counted(t, ctx, 1)
	if n := offline.revisit(t, ctx); n != 0 {
		t.Errorf("%s: %d events queued offline resent after the dedup window: %s", offline.path, n, offline.proxy.dump())
	}
	offlineCount := offline.counted(t, ctx, 0)
	return fmt.Sprintf("late resend (window %v): accepted batch with its answer lost, resent within 0.8 window: %d resent, counted %d (want 1); "+
		"revisit past the window: counted %d (want 1, not resent); queued offline past the window: counted %d (want 0, dropped)",
		window, resent, withinCount, pastCount, offlineCount)
}

// dedupWindow asks the server for its dedup window, as the tracker learns
// it: the Pulse-Dedup-Window header of a collect answer.
func dedupWindow(ctx context.Context, s *server) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url("/v1/collect"), bytes.NewReader([]byte("[]")))
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post to learn the dedup window: %w", err)
	}
	resp.Body.Close()
	secs, err := strconv.ParseFloat(resp.Header.Get("Pulse-Dedup-Window"), 64)
	if err != nil {
		return 0, fmt.Errorf("Pulse-Dedup-Window %q: %w", resp.Header.Get("Pulse-Dedup-Window"), err)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// lateCase is one page of the demo site (reporting to lateSite), visited through its own proxy
// (so its own origin and localStorage) in its own browser context.
type lateCase struct {
	s       *server
	path    string
	proxy   *collectProxy
	url     string
	storage context.Context // owns the browser context; its tabs share storage
	held    []string        // ids of the first visit's batch
}

// newLateCase opens path through a proxy in mode, waits until the page's
// first batch went through the proxy (accepted but unanswered, or dropped
// as if offline) and closes the page.
func newLateCase(t *testing.T, ctx context.Context, s *server, browser context.Context, path, mode string) *lateCase {
	t.Helper()
	c := &lateCase{s: s, path: path, proxy: newCollectProxy(t, s.url(""), mode), storage: browsertest.Tab(t, browser)}
	c.url = c.proxy.url + path
	tab, closeTab := chromedp.NewContext(c.storage)
	browsertest.Do(t, tab, "open "+path, chromedp.Navigate(c.url), chromedp.WaitVisible(`#signup`))
	reqs := c.proxy.wait(t, ctx, "the first batch of "+path, func(r proxied) bool { return slices.Contains(r.paths, path) })
	for _, r := range reqs {
		c.held = append(c.held, r.ids...)
	}
	closeTab()
	c.proxy.setMode(proxyForward)
	return c
}

// revisit opens another page of the same origin and storage and returns
// how many of the first visit's events it sent again.
func (c *lateCase) revisit(t *testing.T, ctx context.Context) int {
	t.Helper()
	before := len(c.proxy.requests())
	next := c.path + "-again"
	tab, closeTab := chromedp.NewContext(c.storage)
	defer closeTab()
	browsertest.Do(t, tab, "revisit "+next, chromedp.Navigate(c.proxy.url+next), chromedp.WaitVisible(`#signup`))
	// The queue is sent in order, so anything resent goes with or before
	// the new page's pageview.
	reqs := c.proxy.wait(t, tab, "the pageview of "+next, func(r proxied) bool { return slices.Contains(r.paths, next) })
	resent := 0
	for _, r := range reqs[before:] {
		for _, id := range r.ids {
			if slices.Contains(c.held, id) {
				resent++
			}
		}
	}
	c.s.waitPath(t, ctx, next, 1)
	return resent
}

// counted waits until the server counts want pageviews of the case's path
// and returns the count; it fails the test when the count is not want
// once the revisit's own pageview is counted.
func (c *lateCase) counted(t *testing.T, ctx context.Context, want int64) int64 {
	t.Helper()
	if want > 0 {
		c.s.waitPath(t, ctx, c.path, want)
	}
	n, err := c.s.pathPageviews(ctx, c.path)
	if err != nil || n != want {
		t.Errorf("%s counted %d times (%v), want %d", c.path, n, err, want)
	}
	return n
}

// pathPageviews is the server's count of pageviews of lateSite's path
// over the last hour.
func (s *server) pathPageviews(ctx context.Context, path string) (int64, error) {
	var res struct {
		Top []struct {
			Value string `json:"value"`
			Count int64  `json:"count"`
		} `json:"top"`
	}
	q := url.Values{"site": {lateSite}, "metric": {"pageviews"}, "dim": {"path"}, "from": {"-1h"}, "k": {"1000"}}
	if err := s.get(ctx, "/v1/top", q, &res); err != nil {
		return 0, err
	}
	for _, v := range res.Top {
		if v.Value == path {
			return v.Count, nil
		}
	}
	return 0, nil
}

// waitPath polls until path has at least want pageviews.
func (s *server) waitPath(t *testing.T, ctx context.Context, path string, want int64) {
	t.Helper()
	waitFor(ctx, t, fmt.Sprintf("%d pageviews of %s", want, path), func() bool {
		n, err := s.pathPageviews(ctx, path)
		return err == nil && n >= want
	})
}

// Modes of the collect proxy.
const (
	proxyForward = "forward" // forward and answer
	proxyHold    = "hold"    // forward (pulse accepts), then never answer the page
	proxyOffline = "offline" // drop the connection without forwarding
)

// collectProxy stands between the browser and pulse: it forwards every
// request, and in hold or offline mode keeps pulse's answer to POST
// /v1/collect from the page. It records each collect request.
type collectProxy struct {
	url     string
	target  string
	fwd     *httputil.ReverseProxy
	stop    chan struct{} // closed at the end of the test: held requests fail
	mu      sync.Mutex
	mode    string
	reqs    []proxied
	changed chan struct{} // closed and replaced on every request
}

type proxied struct {
	at     time.Time
	mode   string
	status int // pulse's answer; 0 when not forwarded
	ids    []string
	paths  []string // of the events' urls
}

func newCollectProxy(t *testing.T, target, mode string) *collectProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &collectProxy{target: target, fwd: httputil.NewSingleHostReverseProxy(u), stop: make(chan struct{}),
		mode: mode, changed: make(chan struct{})}
	director := p.fwd.Director
	p.fwd.Director = func(r *http.Request) {
		director(r)
		r.Header.Del("Accept-Encoding") // pages come back plain, to be rewritten
	}
	p.fwd.ModifyResponse = asLateSite
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(p.stop) }) // first, so srv.Close does not wait for held requests
	p.url = srv.URL
	return p
}

// lateSite is the site the late-resend pages report to: the demo pages
// with their data-site rewritten, so that the attack leaves the demo
// site's aggregates to the good traffic beside it in TestAbuse.
const lateSite = "late"

// asLateSite rewrites the demo page's tracker tag to report to lateSite.
func asLateSite(resp *http.Response) error {
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		return nil
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	b = bytes.ReplaceAll(b, []byte(`data-site="demo"`), []byte(`data-site="`+lateSite+`"`))
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	resp.Header.Del("ETag")
	return nil
}

func (p *collectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/collect" {
		p.fwd.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	rec := proxied{at: time.Now(), mode: p.currentMode()}
	var evs []struct{ ID, URL string }
	_ = json.Unmarshal(body, &evs)
	for _, e := range evs {
		rec.ids = append(rec.ids, e.ID)
		if u, err := url.Parse(e.URL); err == nil {
			rec.paths = append(rec.paths, u.Path)
		}
	}
	if rec.mode == proxyOffline {
		p.record(rec)
		panic(http.ErrAbortHandler) // a network error, as when offline
	}
	resp, answer, err := p.forward(r, body)
	if err == nil {
		rec.status = resp.StatusCode
	}
	p.record(rec)
	if err != nil || rec.mode == proxyHold {
		select { // pulse accepted; the page never learns it
		case <-r.Context().Done():
		case <-p.stop:
		}
		panic(http.ErrAbortHandler)
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// forward sends the collect request to pulse with the browser's headers.
func (p *collectProxy) forward(r *http.Request, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), http.MethodPost, p.target+"/v1/collect", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	return resp, answer, err
}

func (p *collectProxy) currentMode() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

func (p *collectProxy) setMode(mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = mode
}

func (p *collectProxy) record(r proxied) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = append(p.reqs, r)
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *collectProxy) requests() []proxied {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.reqs)
}

// firstAt is when the first collect request arrived.
func (p *collectProxy) firstAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.reqs) == 0 {
		return time.Time{}
	}
	return p.reqs[0].at
}

// wait blocks until a request for which cond holds has come, and returns
// the requests so far; the context only bounds a hung test.
func (p *collectProxy) wait(t *testing.T, ctx context.Context, what string, cond func(proxied) bool) []proxied {
	t.Helper()
	for {
		p.mu.Lock()
		reqs, ch := slices.Clone(p.reqs), p.changed
		p.mu.Unlock()
		if slices.ContainsFunc(reqs, cond) {
			return reqs
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; requests: %s", what, ctx.Err(), p.dump())
		}
	}
}

func (p *collectProxy) dump() string {
	var b bytes.Buffer
	for _, r := range p.requests() {
		fmt.Fprintf(&b, "\n  %s %s status %d ids %v paths %v", r.at.Format("15:04:05.000"), r.mode, r.status, r.ids, r.paths)
	}
	return b.String()
}
