package uaparse

import (
	"sync"
	"testing"
)

func TestParse(t *testing.T) {
	p := New()
	tests := []struct {
		name, ua string
		want     Agent
	}{
		{"chrome windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			Agent{"Chrome", "131", "Windows", "10", "desktop", false}},
		{"windows 7 firefox", "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
			Agent{"Firefox", "115", "Windows", "7", "desktop", false}},
		{"edge", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
			Agent{"Microsoft Edge", "120", "Windows", "10", "desktop", false}},
		{"safari mac", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
			Agent{"Safari", "17", "Mac", "10.15", "desktop", false}},
		{"iphone safari", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
			Agent{"Safari", "17", "iOS", "17.5", "mobile", false}},
		{"ipad", "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
			Agent{"Safari", "16", "iOS", "16.6", "tablet", false}},
		{"chrome on iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0 Mobile/15E148 Safari/604.1",
			Agent{"Chrome", "120", "iOS", "18.7", "mobile", false}},
		{"android phone", "Mozilla/5.0 (Linux; Android 8.1.0; Pixel) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
			Agent{"Chrome", "124", "Android", "8.1", "mobile", false}},
		{"samsung tablet", "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Safari/537.36",
			Agent{"Samsung Browser", "25", "Android", "14", "tablet", false}},
		{"android webview", "Mozilla/5.0 (Linux; Android 16; SM-A155F Build/BP4A.251205.006; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/153.0.8010.36 Mobile Safari/537.36",
			Agent{"Mobile App", "", "Android", "16", "mobile", false}},
		{"google app", "Mozilla/5.0 (iPhone; CPU iPhone OS 26_6_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/439.4.980558000 Mobile/15E148 Safari/604.1",
			Agent{"Mobile App", "", "iOS", "26.6", "mobile", false}},
		{"linux firefox", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
			Agent{"Firefox", "128", "GNU/Linux", "", "desktop", false}},
		{"chromebook", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
			Agent{"Chrome", "120", "Chrome OS", "14541.0", "desktop", false}},
		{"googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			Agent{"", "", "", "", "bot", true}},
		{"crawler named by its URL", "Mozilla/5.0 (compatible; DeuSu/0.1.0; +https://deusu.org)",
			Agent{"", "", "", "", "bot", true}},
		{"headless chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
			Agent{"Chrome", "120", "GNU/Linux", "", "bot", true}},
		{"curl stays a server sender", "curl/8.5.0", Agent{"", "", "", "", "server", false}},
		{"python-requests stays a server sender", "python-requests/2.31.0", Agent{"", "", "", "", "server", false}},
		{"empty", "", Agent{"", "", "", "", "server", false}},
		{"garbage", "\x00\xff(((;;;", Agent{"", "", "", "", "unknown", false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Parse(tt.ua); got != tt.want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.ua, got, tt.want)
			}
		})
	}
}

// TestSoftware: Software is Parse's browser and OS, without the device.
func TestSoftware(t *testing.T) {
	p := New()
	for _, r := range loadFixture(t) {
		want := p.Parse(r.UA)
		want.Device, want.Bot = "", false
		if got := p.Software(r.UA); got != want {
			t.Fatalf("Software(%q) = %+v, want %+v", r.UA, got, want)
		}
	}
}

func TestOSVersion(t *testing.T) {
	tests := []struct{ ua, prefix, want string }{
		{"Android 14; K", "Android ", "14"},
		{"Android 8.1.0;", "Android ", "8.1"},
		{"Mac OS X 10_15_7)", "Mac OS X ", "10.15"},
		{"Mac OS X 10.15; rv", "Mac OS X ", "10.15"},
		{"iPhone OS 16_7_16 like", "iPhone OS ", "16.7"},
		{"Android 9.", "Android ", "9"},
		{"Android x", "Android ", ""},
		{"Android .0", "Android ", ""},
		{"none", "Android ", ""},
		{"Android 12345678901234567890", "Android ", "1234567890123456"},
	}
	for _, tt := range tests {
		if got := versionAfter(tt.ua, tt.prefix); got != tt.want {
			t.Errorf("versionAfter(%q, %q) = %q, want %q", tt.ua, tt.prefix, got, tt.want)
		}
	}
}

// TestParseConcurrent parses the fixture from several goroutines at once
// (run with -race): one Parser is shared by every ingest request.
func TestParseConcurrent(t *testing.T) {
	p := New()
	rows := loadFixture(t)
	want := make([]Agent, len(rows))
	for i, r := range rows {
		want[i] = p.Parse(r.UA)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for i, r := range rows {
				if got := p.Parse(r.UA); got != want[i] {
					t.Errorf("Parse(%q) concurrently = %+v, alone %+v", r.UA, got, want[i])
				}
			}
		})
	}
	wg.Wait()
}
