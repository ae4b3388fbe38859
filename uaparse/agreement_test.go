package uaparse

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/event"
)

// labelled is one line of testdata/agents.jsonl, written by
// testdata/reference/label.mjs: a real User-Agent and what ua-parser-js
// (and, for the user-agents package, Google Analytics) said of it.
type labelled struct {
	UA             string `json:"ua"`
	Src            string `json:"src"`
	GADevice       string `json:"ga_device"`
	Bot            bool   `json:"bot"`
	Browser        string `json:"browser"`
	BrowserVersion string `json:"browser_version"`
	OS             string `json:"os"`
	OSVersion      string `json:"os_version"`
	Device         string `json:"device"`
}

func loadFixture(t testing.TB) []labelled {
	t.Helper()
	f, err := os.Open("testdata/agents.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []labelled
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l labelled
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("decode fixture line %d: %v", len(out)+1, err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// verdict is one parser's answer, in Pulse's names; ok is false for the
// fields the parser does not give.
type verdict struct {
	Agent
	hasBrowser, hasOSVersion, hasDevice bool
}

// The three parsers compared: Pulse's classifier before this package,
// medama alone (only renamed), and this package.
var contenders = []struct {
	name  string
	parse func(p *Parser, ua string) verdict
}{
	{"event.classify (today)", func(_ *Parser, ua string) verdict {
		var e event.Event
		event.Enrich(&e, time.Time{}, ua)
		return verdict{Agent: Agent{Device: e.Device, Bot: e.Bot}, hasDevice: true}
	}},
	{"medama v1.2.5 alone", func(p *Parser, ua string) verdict {
		m := p.ua.Parse(ua)
		a := Agent{Browser: browserName(m.Browser()), OS: osName(m.OS()), Bot: m.IsBot()}
		if a.Browser != "" {
			a.BrowserVersion = p.major(m.BrowserVersion())
		}
		a.Device = strings.ToLower(string(m.Device()))
		return verdict{Agent: a, hasBrowser: true, hasDevice: true}
	}},
	{"uaparse", func(p *Parser, ua string) verdict {
		return verdict{Agent: p.Parse(ua), hasBrowser: true, hasOSVersion: true, hasDevice: true}
	}},
}

type score struct{ agree, of int }

func (s score) String() string {
	if s.of == 0 {
		return "—"
	}
	return fmt.Sprintf("%d/%d (%.1f%%)", s.agree, s.of, 100*float64(s.agree)/float64(s.of))
}

func (s *score) add(ok bool) {
	s.of++
	if ok {
		s.agree++
	}
}

var fields = []string{"browser", "browser version", "OS", "OS version", "device (ua-parser-js)", "device (Google Analytics)", "bot: crawlers flagged", "crawlers flagged bot or server", "bot: browsers not flagged"}

func agreement(p *Parser, rows []labelled, parse func(*Parser, string) verdict) map[string]*score {
	s := map[string]*score{}
	for _, f := range fields {
		s[f] = &score{}
	}
	for _, r := range rows {
		v := parse(p, r.UA)
		if r.Bot {
			s["bot: crawlers flagged"].add(v.Bot)
			// Pulse counts HTTP libraries as "server" senders on purpose.
			s["crawlers flagged bot or server"].add(v.Bot || v.Device == event.DeviceServer)
			continue
		}
		s["bot: browsers not flagged"].add(!v.Bot)
		if v.hasBrowser {
			s["browser"].add(v.Browser == r.Browser)
			s["browser version"].add(v.BrowserVersion == r.BrowserVersion)
			s["OS"].add(v.OS == r.OS)
		}
		if v.hasOSVersion {
			s["OS version"].add(v.OSVersion == r.OSVersion)
		}
		if v.hasDevice {
			s["device (ua-parser-js)"].add(v.Device == r.Device)
			if r.GADevice != "" {
				s["device (Google Analytics)"].add(v.Device == r.GADevice)
			}
		}
	}
	return s
}

// TestAgreement measures each parser against the reference labels and
// checks that this package agrees at least as often as either of the
// others on every field: the reason it takes each field where it does.
// go test -run TestAgreement -v prints the table of docs/useragents.md.
func TestAgreement(t *testing.T) {
	p := New()
	rows := loadFixture(t)
	scores := make([]map[string]*score, len(contenders))
	table := "| field | " + contenders[0].name + " | " + contenders[1].name + " | " + contenders[2].name + " |\n|---|---|---|---|\n"
	for i, c := range contenders {
		scores[i] = agreement(p, rows, c.parse)
	}
	for _, f := range fields {
		table += "| " + f
		for i := range contenders {
			table += " | " + scores[i][f].String()
		}
		table += " |\n"
		ours := scores[len(scores)-1][f]
		for i := range scores[:len(scores)-1] {
			s := scores[i][f]
			if s.of > 0 && ours.agree*s.of < s.agree*ours.of {
				t.Errorf("%s: uaparse agrees %v, %s %v", f, ours, contenders[i].name, s)
			}
		}
	}
	t.Logf("%d User-Agents\n%s", len(rows), table)
}

// TestDisagreements lists where uaparse and the reference differ, to read
// when the fixture or medama changes: go test -run TestDisagreements -v.
func TestDisagreements(t *testing.T) {
	if !testing.Verbose() {
		t.Skip("a listing for reading: run with -v")
	}
	p := New()
	for _, r := range loadFixture(t) {
		a := p.Parse(r.UA)
		want := Agent{Browser: r.Browser, BrowserVersion: r.BrowserVersion, OS: r.OS, OSVersion: r.OSVersion, Device: r.Device, Bot: r.Bot}
		if r.Bot {
			want = Agent{Bot: true}
			a = Agent{Bot: a.Bot}
		}
		if a != want {
			t.Logf("%q\n\tgot  %+v\n\twant %+v", r.UA, a, want)
		}
	}
}
