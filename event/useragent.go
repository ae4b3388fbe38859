package event

import "strings"

// Device classes.
const (
	DeviceDesktop = "desktop"
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
	DeviceBot     = "bot"
	DeviceServer  = "server"
	DeviceUnknown = "unknown"
)

// botTokens mark a User-Agent as a bot: crawlers, headless and automated
// browsers, audit and uptime tools, link-preview fetchers. Lower case.
var botTokens = [...]string{
	"bot", "crawl", "spider", "slurp", "headless", "lighthouse", "pagespeed",
	"phantomjs", "puppeteer", "playwright", "selenium", "webdriver",
	"facebookexternalhit", "preview", "scrapy", "pingdom", "uptime", "monitor",
	"feedfetcher", "mediapartners",
}

// serverTokens mark HTTP libraries and command-line tools. They are not
// bots: server-side senders (logs, custom events from a backend, scripts)
// are a way events arrive, and their events count. They get the device
// class "server" so they can be told apart from browsers.
var serverTokens = [...]string{
	"curl", "wget", "python-requests", "python-urllib", "aiohttp", "httpx",
	"go-http-client", "java/", "okhttp", "apache-httpclient", "libwww", "axios",
	"node-fetch", "undici", "http_request", "postman", "insomnia", "k6/",
	"jmeter", "gatling", "powershell",
}

var tabletTokens = [...]string{"ipad", "tablet", "kindle", "silk/", "playbook", "nexus 7", "nexus 10", "sm-t"}

var mobileTokens = [...]string{"mobi", "iphone", "ipod", "android", "windows phone", "blackberry", "opera mini", "iemobile"}

var desktopTokens = [...]string{"windows nt", "macintosh", "mac os x", "x11", "linux", "cros", "freebsd", "openbsd"}

// Classify is the device class (one of the Device constants) and bot flag
// Enrich derives from a User-Agent header. The same User-Agent always
// gives the same answer.
func Classify(userAgent string) (device string, bot bool) { return classify(userAgent) }

// classify derives the device class and bot flag from a User-Agent header.
// A compact token table rather than a UA library: the package keeps to the
// standard library, and these classes need no browser versions. An empty
// User-Agent is a server-side sender: every browser sends one.
func classify(ua string) (device string, bot bool) {
	if strings.TrimSpace(ua) == "" {
		return DeviceServer, false
	}
	var buf [512]byte
	s := ua
	if len(s) > len(buf) {
		s = s[:len(buf)]
	}
	b := buf[:len(s)]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	low := string(b)
	for _, t := range botTokens {
		if strings.Contains(low, t) {
			return DeviceBot, true
		}
	}
	for _, t := range serverTokens {
		if strings.Contains(low, t) {
			return DeviceServer, false
		}
	}
	for _, t := range tabletTokens {
		if strings.Contains(low, t) {
			return DeviceTablet, false
		}
	}
	// Android tablets leave "Mobile" out of their User-Agent.
	if strings.Contains(low, "android") && !strings.Contains(low, "mobile") {
		return DeviceTablet, false
	}
	for _, t := range mobileTokens {
		if strings.Contains(low, t) {
			return DeviceMobile, false
		}
	}
	for _, t := range desktopTokens {
		if strings.Contains(low, t) {
			return DeviceDesktop, false
		}
	}
	return DeviceUnknown, false
}
