package ingest

import (
	"net/http"
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
	lim := ratelimit.New(ratelimit.Config{PerSite: rate.Limit(1), BurstSite: 3, Now: func() time.Time { return now }})
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
