package enrich

import (
	"net/netip"
	"testing"

	"github.com/pulsehq/pulse/event"
)

const (
	chromeWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	safariIPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)

// countryTable is a Countries of a few prefixes: the geoip package has its
// own tests against its database; this one checks what EnrichAll does
// with an answer, and with none.
type countryTable map[netip.Prefix]string

func (c countryTable) Country(addr netip.Addr) string {
	for p, cc := range c {
		if p.Contains(addr) {
			return cc
		}
	}
	return ""
}

func TestEnrichAll(t *testing.T) {
	x, err := New(countryTable{netip.MustParsePrefix("81.0.0.0/8"): "DE"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ua, client string
		in               []event.Event
		want             []event.Visit
	}{
		{"search then self-referral", chromeWindows, "81.2.3.4",
			[]event.Event{
				{URL: "https://shop.example/pricing", Ref: "https://www.google.com/search?q=x"},
				{URL: "https://shop.example/cart", Ref: "https://shop.example/pricing"},
			},
			[]event.Visit{
				{Source: "Google", Browser: "Chrome", BrowserVersion: "131", OS: "Windows", OSVersion: "10", Country: "DE"},
				{Browser: "Chrome", BrowserVersion: "131", OS: "Windows", OSVersion: "10", Country: "DE"},
			}},
		{"campaign link from a newsletter", safariIPhone, "2001:db8::1",
			[]event.Event{{URL: "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=dec%20sale&utm_content=top&utm_term=shoes", Ref: ""}},
			[]event.Visit{{Source: "newsletter", UTMSource: "newsletter", UTMMedium: "email", UTMCampaign: "dec sale", UTMContent: "top", UTMTerm: "shoes",
				Browser: "Safari", BrowserVersion: "17", OS: "iOS", OSVersion: "17.5"}}},
		{"hacker news, no address", "", "",
			[]event.Event{{URL: "https://shop.example/", Ref: "https://news.ycombinator.com/item?id=1"}},
			[]event.Visit{{Source: "Hacker News"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var client netip.Addr
			if tc.client != "" {
				client = netip.MustParseAddr(tc.client)
			}
			x.EnrichAll(tc.in, tc.ua, client)
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
	x, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	evs := []event.Event{{URL: "https://shop.example/"}}
	x.EnrichAll(evs, chromeWindows, netip.MustParseAddr("81.2.3.4"))
	if evs[0].Country != "" || evs[0].Browser != "Chrome" {
		t.Errorf("visit %+v", evs[0].Visit)
	}
}

func BenchmarkEnrichAll(b *testing.B) {
	x, err := New(countryTable{netip.MustParsePrefix("81.0.0.0/8"): "DE"})
	if err != nil {
		b.Fatal(err)
	}
	client := netip.MustParseAddr("81.2.3.4")
	evs := make([]event.Event, 1)
	b.ReportAllocs()
	for b.Loop() {
		evs[0] = event.Event{URL: "https://shop.example/pricing?utm_source=x", Ref: "https://www.google.com/"}
		x.EnrichAll(evs, chromeWindows, client)
	}
}
