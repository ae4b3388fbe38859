package event

import (
	"reflect"
	"testing"
	"time"
)

func TestEnrich(t *testing.T) {
	now := time.UnixMilli(1764258000999)
	tests := []struct {
		name                  string
		in                    Event
		ua                    string
		ts                    int64
		path, refHost, device string
		bot                   bool
	}{
		{"full", Event{TS: 5, URL: "https://example.com/pricing?x=1#top", Ref: "https://User@News.Example:8443/a?b"},
			"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
			5, "/pricing", "news.example", "desktop", false},
		{"no ts, host only url", Event{URL: "https://example.com"}, "", 1764258000999, "/", "", "server", false},
		{"relative url", Event{URL: "/a/b?c", Ref: "android-app://com.google.android.gm/"}, "curl/8.5.0", 1764258000999, "/a/b", "com.google.android.gm", "server", false},
		{"scheme relative", Event{URL: "//cdn.example/x", Ref: "//r.example"}, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", 1764258000999, "/x", "r.example", "mobile", false},
		{"no url", Event{Ref: "not a url"}, "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)", 1764258000999, "", "", "tablet", false},
		{"hash routing", Event{URL: "https://x/app?q=1#/settings/a?b", Hash: true}, "", 1764258000999, "/app#/settings/a?b", "", "server", false},
		{"hash routing without fragment", Event{URL: "https://x/app#", Hash: true}, "", 1764258000999, "/app", "", "server", false},
		{"fragment without hash routing", Event{URL: "https://x/app#/settings"}, "", 1764258000999, "/app", "", "server", false},
		{"ipv6 ref", Event{URL: "https://x/?q", Ref: "http://[::1]:8080/"}, "Mozilla/5.0 (Linux; Android 14; SM-X200) AppleWebKit/537.36 Chrome/120 Safari/537.36", 1764258000999, "/", "[::1]", "tablet", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.in
			Enrich(&e, now, tt.ua)
			if e.RT != 1764258000999 || e.TS != tt.ts || e.Path != tt.path || e.RefHost != tt.refHost || e.Device != tt.device || e.Bot != tt.bot || e.Hash {
				t.Errorf("got rt=%d ts=%d path=%q ref_host=%q device=%q bot=%v hash=%v", e.RT, e.TS, e.Path, e.RefHost, e.Device, e.Bot, e.Hash)
			}
		})
	}
}

func TestEnrichAll(t *testing.T) {
	evs := []Event{{URL: "https://a/x"}, {TS: 7, Ref: "https://B/"}}
	EnrichAll(evs, time.UnixMilli(1000), "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148")
	want := []Event{{URL: "https://a/x", TS: 1000, RT: 1000, Path: "/x", Device: "mobile"}, {TS: 7, RT: 1000, Ref: "https://B/", RefHost: "b", Device: "mobile"}}
	for i := range evs {
		if !reflect.DeepEqual(evs[i], want[i]) {
			t.Errorf("event %d = %+v, want %+v", i, evs[i], want[i])
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		ua     string
		device string
		bot    bool
	}{
		{"", "server", false},
		{"   ", "server", false},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", true},
		{"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bot", true},
		{"Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)", "bot", true},
		{"Baiduspider+(+http://www.baidu.com/search/spider.htm)", "bot", true},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36", "bot", true},
		{"Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse", "bot", true},
		{"curl/8.5.0", "server", false},
		{"Wget/1.21.4", "server", false},
		{"python-requests/2.31.0", "server", false},
		{"Go-http-client/1.1", "server", false},
		{"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "bot", true},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "desktop", false},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15", "desktop", false},
		{"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "desktop", false},
		{"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "desktop", false},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1", "mobile", false},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", "mobile", false},
		{"Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.14977", "mobile", false},
		{"Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25 Version/10.54", "mobile", false},
		{"Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1", "tablet", false},
		{"Mozilla/5.0 (Linux; Android 13; SM-T870) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "tablet", false},
		{"Mozilla/5.0 (Linux; U; Android 4.0.3; en-us; KFTT Build/IML74K) AppleWebKit/537.36 (KHTML, like Gecko) Silk/3.68 like Chrome/39.0.2171.93 Safari/537.36", "tablet", false},
		{"SomethingElse/1.0", "unknown", false},
	}
	for _, tt := range tests {
		t.Run(tt.ua, func(t *testing.T) {
			d, bot := classify(tt.ua)
			if d != tt.device || bot != tt.bot {
				t.Errorf("classify = %q, %v; want %q, %v", d, bot, tt.device, tt.bot)
			}
		})
	}
}
