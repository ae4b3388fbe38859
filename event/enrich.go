package event

import (
	"strings"
	"time"
)

// Enrich sets the server fields of e: RT from receivedAt; TS = RT when the
// client sent none; Path from URL ("/" when the URL has an empty path, ""
// when there is no URL; with the URL's fragment when e.Hash); RefHost, the lower-case host of Ref without port or
// user info; Device and Bot from the User-Agent header.
func Enrich(e *Event, receivedAt time.Time, userAgent string) {
	device, bot := classify(userAgent)
	enrich(e, receivedAt.UnixMilli(), device, bot)
}

// EnrichAll enriches the events of one request, which share a receive time
// and a User-Agent, classifying the User-Agent once.
func EnrichAll(evs []Event, receivedAt time.Time, userAgent string) {
	device, bot := classify(userAgent)
	EnrichAllAs(evs, receivedAt, device, bot)
}

// EnrichAllAs is EnrichAll with the device class and bot flag of the
// User-Agent given (by Classify), for a caller that keeps those of the
// User-Agents it sees.
func EnrichAllAs(evs []Event, receivedAt time.Time, device string, bot bool) {
	rt := receivedAt.UnixMilli()
	for i := range evs {
		enrich(&evs[i], rt, device, bot)
	}
}

func enrich(e *Event, rt int64, device string, bot bool) {
	e.RT = rt
	if e.TS == 0 {
		e.TS = e.RT
	}
	e.Path = ""
	if e.URL != "" {
		e.Path = urlPath(e.URL)
	}
	if e.Hash {
		if _, frag, ok := strings.Cut(e.URL, "#"); ok && frag != "" {
			e.Path += "#" + frag
		}
		e.Hash = false
	}
	e.RefHost = URLHost(e.Ref)
	e.Device, e.Bot = device, bot
}

// urlPath returns the path of an absolute or relative URL, as sent (still
// escaped), without query or fragment. url.Parse would do, at ten times the
// cost and with errors for URLs browsers accept.
func urlPath(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if i := schemeEnd(u); i >= 0 {
		u = u[i:]
		if strings.HasPrefix(u, "//") {
			u = u[2:]
			j := strings.IndexByte(u, '/')
			if j < 0 {
				return "/"
			}
			u = u[j:]
		}
	} else if strings.HasPrefix(u, "//") {
		u = u[2:]
		j := strings.IndexByte(u, '/')
		if j < 0 {
			return "/"
		}
		u = u[j:]
	}
	if u == "" {
		return "/"
	}
	return u
}

// URLHost returns the host of an absolute or scheme-relative URL, lower
// case, without user info and port; "" when there is none. It reads a URL
// as ingest reads the page and referrer, so every host Pulse derives (the
// Stats API's event:hostname too) follows one rule.
func URLHost(u string) string {
	if i := schemeEnd(u); i >= 0 {
		u = u[i:]
	}
	if !strings.HasPrefix(u, "//") {
		return ""
	}
	u = u[2:]
	if i := strings.IndexAny(u, "/?#"); i >= 0 {
		u = u[:i]
	}
	if i := strings.LastIndexByte(u, '@'); i >= 0 {
		u = u[i+1:]
	}
	if strings.HasPrefix(u, "[") { // IPv6 literal
		if i := strings.IndexByte(u, ']'); i >= 0 {
			u = u[:i+1]
		}
	} else if i := strings.IndexByte(u, ':'); i >= 0 {
		u = u[:i]
	}
	return strings.ToLower(u)
}

// schemeEnd returns the index after "scheme:" when u starts with a scheme
// (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )), else -1.
func schemeEnd(u string) int {
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return i + 1
		default:
			return -1
		}
	}
	return -1
}
