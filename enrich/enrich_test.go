package enrich

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/geoip"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/visitorid"
)

const (
	chromeWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	safariIPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)

// bundled is the bundled country database, closed after the test.
func bundled(tb testing.TB) *geoip.DB {
	tb.Helper()
	db, err := geoip.Bundled()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestEnrichAll(t *testing.T) {
	x, err := New(bundled(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ua, client string
		in               []event.Event
		want             []event.Visit
	}{
		{"search then self-referral, from Deutsche Telekom", chromeWindows, "80.156.0.1",
			[]event.Event{
				{URL: "https://shop.example/pricing", Ref: "https://www.google.com/search?q=x"},
				{URL: "https://shop.example/cart", Ref: "https://shop.example/pricing"},
			},
			[]event.Visit{
				{Source: "Google", Browser: "Chrome", BrowserVersion: "131", OS: "Windows", OSVersion: "10", Country: "DE"},
				{Browser: "Chrome", BrowserVersion: "131", OS: "Windows", OSVersion: "10", Country: "DE"},
			}},
		{"campaign link from a newsletter, from Google's IPv6", safariIPhone, "2001:4860:4860::8888",
			[]event.Event{{URL: "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=dec%20sale&utm_content=top&utm_term=shoes", Ref: ""}},
			[]event.Visit{{Source: "newsletter", UTMSource: "newsletter", UTMMedium: "email", UTMCampaign: "dec sale", UTMContent: "top", UTMTerm: "shoes",
				Browser: "Safari", BrowserVersion: "17", OS: "iOS", OSVersion: "17.5", Country: "US"}}},
		{"hacker news, private address", "", "10.1.2.3",
			[]event.Event{{URL: "https://shop.example/", Ref: "https://news.ycombinator.com/item?id=1"}},
			[]event.Visit{{Source: "Hacker News"}}},
		{"no address", "", "",
			[]event.Event{{URL: "https://shop.example/", Ref: "https://news.ycombinator.com/item?id=1"}},
			[]event.Visit{{Source: "Hacker News"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var client netip.Addr
			if tc.client != "" {
				client = netip.MustParseAddr(tc.client)
			}
			if err := x.EnrichAll(context.Background(), tc.in, tc.ua, client); err != nil {
				t.Fatal(err)
			}
			for i, e := range tc.in {
				if e.Visit != tc.want[i] {
					t.Errorf("event %d: %+v, want %+v", i, e.Visit, tc.want[i])
				}
			}
		})
	}
}

// TestEnrichAllWithoutCountries: no country database, no country.
func TestEnrichAllWithoutCountries(t *testing.T) {
	x, err := New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	evs := []event.Event{{URL: "https://shop.example/"}}
	if err := x.EnrichAll(context.Background(), evs, chromeWindows, netip.MustParseAddr("80.156.0.1")); err != nil {
		t.Fatal(err)
	}
	if evs[0].Country != "" || evs[0].Browser != "Chrome" {
		t.Errorf("visit %+v", evs[0].Visit)
	}
}

func BenchmarkEnrichAll(b *testing.B) {
	x, err := New(bundled(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	client := netip.MustParseAddr("80.156.0.1")
	evs := make([]event.Event, 1)
	b.ReportAllocs()
	for b.Loop() {
		evs[0] = event.Event{URL: "https://shop.example/pricing?utm_source=x", Ref: "https://www.google.com/"}
		x.EnrichAll(context.Background(), evs, chromeWindows, client)
	}
}

// TestEnrichAllVisitorIDs: an event without a uid gets the visitor id of
// its site, address and User-Agent on its receive day; one with a uid
// keeps it; without the day's salt nothing changes and the error says so.
func TestEnrichAllVisitorIDs(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	x, err := New(nil, visitorid.New(rdb))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixMilli()
	client := netip.MustParseAddr("80.156.0.1")
	evs := []event.Event{{Site: "shop", RT: rt}, {Site: "shop", RT: rt + 1000, UID: "u-1"}, {Site: "blog", RT: rt}}
	if err := x.EnrichAll(ctx, evs, chromeWindows, client); err != nil {
		t.Fatal(err)
	}
	want, err := visitorid.New(rdb).ID(ctx, "shop", client, chromeWindows, time.UnixMilli(rt))
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].UID != want || evs[1].UID != "u-1" || evs[2].UID == "" || evs[2].UID == want {
		t.Errorf("uids %q %q %q, want %q, u-1 and another", evs[0].UID, evs[1].UID, evs[2].UID, want)
	}

	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { down.Close() })
	y, err := New(nil, visitorid.New(down))
	if err != nil {
		t.Fatal(err)
	}
	evs = []event.Event{{Site: "shop", RT: rt}}
	if err := y.EnrichAll(ctx, evs, chromeWindows, client); err == nil || evs[0].UID != "" || evs[0].Browser != "" {
		t.Errorf("without the salt: err %v, event %+v; want an error and the event unchanged", err, evs[0])
	}
}
