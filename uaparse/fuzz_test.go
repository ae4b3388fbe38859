package uaparse

import (
	"testing"

	"github.com/pulsehq/pulse/event"
)

var deviceClasses = map[string]bool{
	event.DeviceDesktop: true, event.DeviceMobile: true, event.DeviceTablet: true,
	event.DeviceBot: true, event.DeviceServer: true, event.DeviceUnknown: true,
}

// FuzzParse checks that any header parses without panic, twice to the same
// Agent, into a known device class, with versions made of digits and dots
// (or a Windows name) and bot exactly when the class is bot. Interesting
// inputs found are kept in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, r := range loadFixture(f)[:40] {
		f.Add(r.UA)
	}
	f.Add("Mozilla/5.0 (iPhone; CPU iPhone OS 1_ like Mac OS X)")
	f.Add("Windows NT 6.")
	f.Add("Android \xff")
	p := New()
	f.Fuzz(func(t *testing.T, ua string) {
		a := p.Parse(ua)
		if b := p.Parse(ua); a != b {
			t.Fatalf("Parse(%q) not deterministic: %+v then %+v", ua, a, b)
		}
		if !deviceClasses[a.Device] {
			t.Errorf("Parse(%q).Device = %q", ua, a.Device)
		}
		if a.Bot != (a.Device == event.DeviceBot) {
			t.Errorf("Parse(%q): Bot %v with Device %q", ua, a.Bot, a.Device)
		}
		if !isNumber(a.BrowserVersion) || len(a.BrowserVersion) > 10 {
			t.Errorf("Parse(%q).BrowserVersion = %q", ua, a.BrowserVersion)
		}
		if a.OS != "Windows" && (!isVersion(a.OSVersion) || len(a.OSVersion) > 16) {
			t.Errorf("Parse(%q).OSVersion = %q", ua, a.OSVersion)
		}
		if a.Browser == "" && a.BrowserVersion != "" {
			t.Errorf("Parse(%q): version %q without a browser", ua, a.BrowserVersion)
		}
	})
}

func isNumber(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isVersion: "" or digits with at most one dot between digits.
func isVersion(s string) bool {
	dots := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if i == 0 || i == len(s)-1 || dots == 1 {
				return false
			}
			dots++
		case c < '0' || c > '9':
			return false
		}
	}
	return true
}
