package systemtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The site limit of TestSiteFairness (--rate-site 50, default burst
// 10000) and the quarter of the burst that one client may take.
const (
	fairSiteRate      = 50.0
	shareBurst        = 2500
	fairBatch         = 500 // events per flood request while it drains the burst
	floodPerSecond    = 120
	floodFor          = 3 * time.Second
	fairGoodEvents    = 10
	floodClient       = "203.0.113.66"
	goodClient        = "198.51.100.7"
	trustedLoopbackGW = "127.0.0.1"
)

// sendAs sends one request to path as client (through the trusted
// loopback proxy's X-Forwarded-For) and returns the status and the
// Retry-After header. It does not retry.
func sendAs(ctx context.Context, s *server, method, path, client, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.url(path), strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) sitefair-test")
	req.Header.Set("X-Forwarded-For", client)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}

func batch(site, prefix string, n int) string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"id":"%s-%d","site":"%s","type":"pageview","url":"https://example.com/"}`, prefix, i, site)
	}
	return strings.Join(lines, "\n")
}

// TestSiteFairness reproduces issue 11 item 4 against the built binary
// at a site rate of 50 events/s, where without a per-client share one
// sender takes every token as it refills.
func TestSiteFairness(t *testing.T) {
	s := newServer(t, "--trusted-proxies", trustedLoopbackGW, "--rate-site", fmt.Sprint(fairSiteRate))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Log(attackSiteFlood(fairSiteRate)(t, ctx, s))
}

// attackSiteFlood returns the attack of item 4 on a server whose
// --rate-site is siteRate (with the default burst of 10000; it must trust
// 127.0.0.1 as a proxy): one sender floods site victim at about 120
// requests/s, first with batches of 500 events until it is refused (its
// share of the burst drains in 5 requests), then with batches sized to
// offer twice its share of the rate. Another client sends 10 events
// meanwhile, by POST and by pixel. Every one of them must get 202, and the
// flooder gets at most its share of the site.
func attackSiteFlood(siteRate float64) func(t *testing.T, ctx context.Context, s *server) string {
	return func(t *testing.T, ctx context.Context, s *server) string {
		shareRate := siteRate / 4
		perTick := max(1, int(2*shareRate/floodPerSecond))
		var (
			mu             sync.Mutex
			floodAccepted  int // events
			flood429, sent int
			floodErr       error
		)
		start := time.Now()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second / floodPerSecond)
			defer tick.Stop()
			for i := 0; time.Since(start) < floodFor; i++ {
				<-tick.C
				n := fairBatch
				mu.Lock()
				if flood429 > 0 {
					n = perTick // drained: now take the tokens as they refill
				}
				mu.Unlock()
				code, _, err := sendAs(ctx, s, http.MethodPost, "/v1/collect", floodClient, batch("victim", fmt.Sprintf("flood%d", i), n))
				mu.Lock()
				sent++
				switch {
				case err != nil:
					floodErr = err
				case code == http.StatusAccepted:
					floodAccepted += n
				case code == http.StatusTooManyRequests:
					flood429++
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()

		// Let the flood drain its burst (and, without a per-client share,
		// the site's) before the other client sends.
		time.Sleep(time.Second)
		good := 0
		for i := range fairGoodEvents {
			method, path, body := http.MethodPost, "/v1/collect", batch("victim", fmt.Sprintf("good%d", i), 1)
			if i%2 == 1 {
				method, path, body = http.MethodGet, fmt.Sprintf("/v1/collect.gif?site=victim&type=pageview&id=goodgif%d", i), ""
			}
			code, _, err := sendAs(ctx, s, method, path, goodClient, body)
			if err != nil {
				t.Fatalf("good client, event %d: %v", i, err)
			}
			if code == http.StatusAccepted {
				good++
			} else {
				t.Errorf("good client, event %d (%s): status %d, want 202", i, method, code)
			}
			time.Sleep(100 * time.Millisecond)
		}
		wg.Wait()
		elapsed := time.Since(start)
		if floodErr != nil {
			t.Fatalf("flood: %v", floodErr)
		}
		// The flooder's bound: its burst plus its rate over the time it sent.
		bound := shareBurst + int(shareRate*elapsed.Seconds())
		if flood429 == 0 {
			t.Errorf("flood: no request refused, so the test did not flood")
		}
		if floodAccepted > bound {
			t.Errorf("flood: %d events accepted, more than its share allows (%d)", floodAccepted, bound)
		}
		return fmt.Sprintf("a sender at %.0f requests/s got %d events accepted (bound: burst share %d + %.1f/s = %d; %d requests 429); another client %d/%d accepted",
			float64(sent)/elapsed.Seconds(), floodAccepted, shareBurst, shareRate, bound, flood429, good, fairGoodEvents)
	}
}

// TestPixelSiteLimit: the pixel of a site over its rate gets 429 with
// Retry-After, like POST. Four clients take their shares (4 x 2500 events
// = the site's burst of 10000); --rate-site 1 keeps it from refilling.
func TestPixelSiteLimit(t *testing.T) {
	s := newServer(t, "--trusted-proxies", trustedLoopbackGW, "--rate-site", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const perRequest = 500
	for c := range 4 {
		client := fmt.Sprintf("192.0.2.%d", c+1)
		for i := range shareBurst / perRequest {
			code, _, err := sendAs(ctx, s, http.MethodPost, "/v1/collect", client, batch("full", fmt.Sprintf("c%d-%d", c, i), perRequest))
			if err != nil || code != http.StatusAccepted {
				t.Fatalf("client %s, batch %d: status %d, %v; want 202", client, i, code, err)
			}
		}
	}
	tests := []struct {
		name, method, path, client, body string
	}{
		{"POST, a client over its share", http.MethodPost, "/v1/collect", "192.0.2.1", batch("full", "late-post", 1)},
		{"pixel, a client over its share", http.MethodGet, "/v1/collect.gif?site=full&type=pageview&id=late-gif", "192.0.2.1", ""},
		{"POST, a new client of a full site", http.MethodPost, "/v1/collect", "192.0.2.9", batch("full", "new-post", 1)},
		{"pixel, a new client of a full site", http.MethodGet, "/v1/collect.gif?site=full&type=pageview&id=new-gif", "192.0.2.9", ""},
	}
	for _, tt := range tests {
		code, retry, err := sendAs(ctx, s, tt.method, tt.path, tt.client, tt.body)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if code != http.StatusTooManyRequests || retry == "" {
			t.Errorf("%s: status %d, Retry-After %q; want 429 with Retry-After", tt.name, code, retry)
		}
	}
	// Another site is untouched by the full one.
	if code, _, err := sendAs(ctx, s, http.MethodGet, "/v1/collect.gif?site=other&type=pageview&id=o1", "192.0.2.9", ""); err != nil || code != http.StatusAccepted {
		t.Errorf("pixel of another site: status %d, %v; want 202", code, err)
	}
}
