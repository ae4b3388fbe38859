package uaparse

import (
	"strings"
	"time"

	"github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"

	"github.com/pulsehq/pulse/event"
)

// Agent is what a User-Agent says about its sender, in the names Plausible
// shows. A field is "" when the User-Agent does not tell it.
type Agent struct {
	Browser        string // "Chrome", "Safari", "Microsoft Edge", "Mobile App", ...
	BrowserVersion string // major version only: "120"
	OS             string // "Windows", "Mac", "iOS", "Android", "GNU/Linux", "Chrome OS", ...
	OSVersion      string // major.minor as the User-Agent gives it: "17.5", "10.15", "14"; Windows by name: "10", "8.1", "7"
	Device         string // one of event's classes: desktop, mobile, tablet, bot, server, unknown
	Bot            bool
}

// Parser parses User-Agents. It is safe for concurrent use: after New
// nothing in it changes.
type Parser struct {
	ua *useragent.Parser
	// numbers[i] is the decimal text of i, so a version costs no allocation.
	numbers [maxNumber]string
}

const maxNumber = 1024

// New returns a Parser. The first call builds medama's token trie (about a
// quarter of a second; medama keeps one per process); build one Parser at
// start and share it.
func New() *Parser {
	p := &Parser{ua: useragent.NewParser()}
	for i := range p.numbers {
		p.numbers[i] = itoa(i)
	}
	return p
}

// Parse reads ua. The same ua always gives the same Agent.
func (p *Parser) Parse(ua string) Agent {
	a, m := p.software(ua)
	a.Device, a.Bot = p.class(ua, m)
	return a
}

// Software is Parse without Device and Bot, for a caller that has them
// already (ingest, from event.EnrichAll): the device classifier is most of
// Parse's cost.
func (p *Parser) Software(ua string) Agent {
	a, _ := p.software(ua)
	return a
}

// software is the browser and OS of ua, and medama's reading of it.
func (p *Parser) software(ua string) (Agent, useragent.UserAgent) {
	m := p.ua.Parse(ua)
	a := Agent{
		Browser: browserName(m.Browser()),
		OS:      osName(m.OS()),
	}
	if a.Browser != "" {
		a.BrowserVersion = p.major(m.BrowserVersion())
	}
	// Apps' web views are a phone's and a tablet's.
	if (m.OS() == agents.OSIOS || m.OS() == agents.OSAndroid) && isInApp(ua) {
		a.Browser, a.BrowserVersion = BrowserMobileApp, ""
	}
	a.OSVersion = osVersion(ua, m.OS())
	return a, m
}

// class is the device class and bot flag. event's own classifier decides
// (it matched the reference on every browser of the fixture, and it knows
// the "server" class of HTTP libraries); medama's bot verdict and a URL in
// the User-Agent (crawlers give one to say who they are, browsers never do)
// add the crawlers its token list misses. A server sender stays "server":
// Pulse counts events from backends and scripts.
func (p *Parser) class(ua string, m useragent.UserAgent) (string, bool) {
	var e event.Event
	// Enrich is event's public door to its classifier; on an empty event it
	// does nothing else worth a cost.
	event.Enrich(&e, time.Time{}, ua)
	if e.Bot || e.Device == event.DeviceServer {
		return e.Device, e.Bot
	}
	if m.Device() == agents.DeviceBot || hasURL(ua) {
		return event.DeviceBot, true
	}
	return e.Device, false
}

// major returns the leading number of a dotted version, "" if none.
func (p *Parser) major(v string) string {
	n, ok := leadingNumber(v)
	if !ok {
		return ""
	}
	if n < maxNumber {
		return p.numbers[n]
	}
	return itoa(n)
}

func hasURL(ua string) bool {
	return strings.Contains(ua, "http://") || strings.Contains(ua, "https://") ||
		strings.Contains(ua, "www.") || strings.Contains(ua, "mailto:")
}

// leadingNumber parses the digits at the start of s (at most 9).
func leadingNumber(s string) (int, bool) {
	n, i := 0, 0
	for ; i < len(s) && i < 9 && '0' <= s[i] && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n, i > 0
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}
