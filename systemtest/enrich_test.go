package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/event"
)

// TestVisitFields: events posted through a trusted proxy, with real
// User-Agents, referrers and campaign links, reach the archive with the
// visit fields ingest derived (source, UTM tags, browser, OS, country)
// and, sent without a uid, a visitor id of their address and browser;
// the client address itself is nowhere in the archive.
func TestVisitFields(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server")
	}
	s := newServer(t, "--trusted-proxies", trustedLoopbackGW, "--archive-max-age", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const (
		firefoxLinux  = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
		chromeAndroid = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
	)
	tests := []struct {
		id, client, ua, url, ref string
		want                     event.Visit
	}{
		{"vf-search", "80.156.0.1", firefoxLinux, "https://shop.example/pricing", "https://www.google.com/",
			event.Visit{Source: "Google", Browser: "Firefox", BrowserVersion: "133", OS: "GNU/Linux", Country: "DE"}},
		{"vf-self", "80.156.0.1", firefoxLinux, "https://shop.example/cart", "https://shop.example/pricing",
			event.Visit{Browser: "Firefox", BrowserVersion: "133", OS: "GNU/Linux", Country: "DE"}},
		{"vf-campaign", "8.8.8.8", chromeAndroid, "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=dec", "",
			event.Visit{Source: "newsletter", UTMSource: "newsletter", UTMMedium: "email", UTMCampaign: "dec",
				Browser: "Chrome", BrowserVersion: "131", OS: "Android", OSVersion: "14", Country: "US"}},
		{"vf-social", "192.168.1.20", chromeAndroid, "https://shop.example/", "https://news.ycombinator.com/item?id=1",
			event.Visit{Source: "Hacker News", Browser: "Chrome", BrowserVersion: "131", OS: "Android", OSVersion: "14"}},
	}
	for _, tc := range tests {
		body := fmt.Sprintf(`{"id":%q,"site":"vf","type":"pageview","url":%q,"ref":%q}`, tc.id, tc.url, tc.ref)
		code, _, err := s.postFrom(ctx, []byte(body), tc.ua, tc.client)
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusAccepted {
			t.Fatalf("%s: status %d", tc.id, code)
		}
	}

	got := archivedVisits(t, ctx, s, "vf", len(tests))
	// Sent without a uid: one visitor id per address and browser.
	if a, b, c := got["vf-search"].UID, got["vf-self"].UID, got["vf-campaign"].UID; len(a) != 32 || a != b || c == a || len(c) != 32 {
		t.Errorf("visitor ids %q %q %q, want the first two equal and the third another", a, b, c)
	}
	for _, tc := range tests {
		if got[tc.id].Visit != tc.want {
			t.Errorf("%s archived with %+v, want %+v", tc.id, got[tc.id].Visit, tc.want)
		}
		if e := got[tc.id]; strings.Contains(fmt.Sprintf("%+v", e), tc.client) {
			t.Errorf("%s: the client address %s is in the archived event %+v", tc.id, tc.client, e)
		}
	}
}

// archivedVisits waits until the archive under s's data dir holds n events
// of site, and returns them by id.
func archivedVisits(t *testing.T, ctx context.Context, s *server, site string, n int) map[string]event.Event {
	t.Helper()
	store := archive.NewDir(filepath.Join(s.data, "archive"))
	for {
		got := map[string]event.Event{}
		objs, err := archive.AllObjects(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			err := archive.ReadObject(ctx, store, o.Key, func(r archive.Record) error {
				if r.Event.Site == site {
					got[r.Event.ID] = r.Event
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(got) >= n {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the archive holds %d of the %d events of %s", len(got), n, site)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
