package ingest

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/pulsehq/pulse/ratelimit"
)

// TestSiteRateLimit: a site over its rate gets 429 with Retry-After and
// nothing of the request is published; another site is unaffected.
func TestSiteRateLimit(t *testing.T) {
	now := testNow
	// One client: the site's own bucket, without a client's share of it.
	lim := ratelimit.New(ratelimit.Config{PerSite: rate.Limit(1), BurstSite: 3, ClientShare: -1, Now: func() time.Time { return now }})
	pub := &memPub{}
	r, _ := newServer(t, pub, Config{Sites: lim})
	body := func(site string, n int) string {
		var lines []string
		for i := 0; i < n; i++ {
			lines = append(lines, strings.Replace(ev(site+string(rune('a'+i))), `"demo"`, `"`+site+`"`, 1))
		}
		return strings.Join(lines, "\n")
	}
	tests := []struct {
		site       string
		n          int
		want       int
		retryAfter string
	}{
		{"demo", 3, http.StatusAccepted, ""},
		{"demo", 1, http.StatusTooManyRequests, "1"},
		{"shop", 2, http.StatusAccepted, ""},
	}
	for _, tt := range tests {
		w := post(r, body(tt.site, tt.n), "text/plain")
		if w.Code != tt.want {
			t.Fatalf("%s x%d: status %d, want %d (%s)", tt.site, tt.n, w.Code, tt.want, w.Body)
		}
		if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
			t.Errorf("%s x%d: Retry-After %q, want %q", tt.site, tt.n, got, tt.retryAfter)
		}
	}
	if got := len(pub.events(t)); got != 5 {
		t.Errorf("published %d events, want 5 (the refused request must publish nothing)", got)
	}
}

// request sends req from client (RemoteAddr; no proxy is trusted).
func request(r http.Handler, req *http.Request, client string) *httptest.ResponseRecorder {
	req.RemoteAddr = client + ":40000"
	req.Header.Set("User-Agent", chromeUA)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

// TestSiteClientShare: a client that exhausts its share of a site gets
// 429 while the site's other clients keep getting 202, on POST and on
// the pixel alike; and the pixel for a site over its rate gets 429 with
// Retry-After like POST.
func TestSiteClientShare(t *testing.T) {
	now := testNow
	// Share 0.25 of 8/s and 8: 2/s and 2 per client.
	lim := ratelimit.New(ratelimit.Config{PerSite: 8, BurstSite: 8, ClientShare: 0.25, Now: func() time.Time { return now }})
	pub := &memPub{}
	r, _ := newServer(t, pub, Config{Sites: lim})
	postFrom := func(client, id string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/v1/collect", strings.NewReader(ev(id)))
		req.Header.Set("Content-Type", "text/plain")
		return request(r, req, client)
	}
	pixelFrom := func(client, id string) *httptest.ResponseRecorder {
		return request(r, httptest.NewRequest(http.MethodGet, "/v1/collect.gif?site=demo&type=pageview&id="+id, nil), client)
	}
	tests := []struct {
		name       string
		send       func(client, id string) *httptest.ResponseRecorder
		client     string
		want       int
		retryAfter string
	}{
		{"attacker within its share", postFrom, "198.51.100.9", 202, ""},
		{"attacker, pixel, within its share", pixelFrom, "198.51.100.9", 202, ""},
		{"attacker over its share", postFrom, "198.51.100.9", 429, "1"},
		{"attacker's pixel over its share", pixelFrom, "198.51.100.9", 429, "1"},
		{"other client, POST", postFrom, "192.0.2.1", 202, ""},
		{"other client, pixel", pixelFrom, "192.0.2.1", 202, ""},
		{"third client", postFrom, "192.0.2.2", 202, ""},
		{"third client, pixel", pixelFrom, "192.0.2.2", 202, ""},
		{"fourth client", postFrom, "192.0.2.3", 202, ""},
		{"fourth client, pixel", pixelFrom, "192.0.2.3", 202, ""},
		// The site's 8 are spent: refused by the site, POST and pixel.
		{"site over its rate, POST", postFrom, "192.0.2.4", 429, "1"},
		{"site over its rate, pixel", pixelFrom, "192.0.2.4", 429, "1"},
	}
	accepted := 0
	for i, tt := range tests {
		w := tt.send(tt.client, "e"+strconv.Itoa(i))
		if w.Code != tt.want {
			t.Fatalf("%s: status %d, want %d (%s %s)", tt.name, w.Code, tt.want, w.Header().Get("X-Pulse-Error"), w.Body)
		}
		if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
			t.Errorf("%s: Retry-After %q, want %q", tt.name, got, tt.retryAfter)
		}
		if tt.want == 202 {
			accepted++
		}
	}
	if got := len(pub.events(t)); got != accepted {
		t.Errorf("published %d events, want %d (refused requests publish nothing)", got, accepted)
	}
}
