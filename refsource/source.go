package refsource

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/pulsehq/pulse/event"
)

//go:generate ./update.sh

// Direct is the source of a visit that has neither a referrer from another
// site nor a tagged source, as Plausible's dashboard names it.
const Direct = "Direct / None"

// referrersJSON is the list of known referrers: a JSON object from
// "host" or "host/path-prefix" to {"source": name, "medium": kind}.
//
//go:embed referrers.json
var referrersJSON string

// maxNameKey bounds the tagged sources looked up in List.names: no name or
// alias is longer, so a longer utm_source is kept as it is without a look-up.
const maxNameKey = 64

// List is the known referrers and source names. It is built once by New
// and is read-only afterwards, so any number of goroutines may use it.
type List struct {
	hosts map[string]hostEntry
	// names maps a lower-case source name or shorthand to its name, so a
	// tagged source ("google", "GOOGLE", "ig") reads as the list's name.
	names map[string]string
}

// hostEntry is what one host is named: paths are tried first (longest
// prefix first, as Ghost's parser does), then name; name is "" when only
// some paths of the host are known.
type hostEntry struct {
	name  string
	paths []pathEntry
}

type pathEntry struct {
	prefix, name string
}

// New builds the List from the embedded referrers.json and Pulse's
// additions.
func New() (*List, error) {
	var raw map[string]struct {
		Source string `json:"source"`
	}
	if err := json.Unmarshal([]byte(referrersJSON), &raw); err != nil {
		return nil, fmt.Errorf("decode embedded referrers.json: %w", err)
	}
	l := &List{
		hosts: make(map[string]hostEntry, len(raw)),
		names: make(map[string]string),
	}
	for key, v := range raw {
		if v.Source == "" {
			return nil, fmt.Errorf("embedded referrers.json: %q has no source", key)
		}
		l.addHost(key, v.Source)
		l.addName(v.Source)
	}
	// Pulse's additions come second so that they win over the list.
	for key, name := range extraHosts() {
		l.addHost(key, name)
		l.addName(name)
	}
	for alias, name := range aliases() {
		l.names[asciiLower(alias)] = name
	}
	for host, e := range l.hosts {
		// Longest prefix first; equal lengths by prefix, so the order
		// never depends on the map's.
		sort.Slice(e.paths, func(i, j int) bool {
			a, b := e.paths[i].prefix, e.paths[j].prefix
			if len(a) != len(b) {
				return len(a) > len(b)
			}
			return a < b
		})
		l.hosts[host] = e
	}
	return l, nil
}

func (l *List) addHost(key, name string) {
	host, path, hasPath := strings.Cut(key, "/")
	host = asciiLower(host)
	e := l.hosts[host]
	if hasPath {
		e.paths = append(e.paths, pathEntry{prefix: "/" + path, name: name})
	} else {
		e.name = name
	}
	l.hosts[host] = e
}

// addName records name under its lower-case form; two names that differ
// only in case ("QIP", "qip") resolve to the smaller, whatever the order
// they come in.
func (l *List) addName(name string) {
	key := asciiLower(name)
	if old, ok := l.names[key]; !ok || name < old {
		l.names[key] = name
	}
}

// Source is the source of a visit to pageURL that came from referrer:
// the page's tagged source (utm_source, else source, else ref) named as the
// list names it; else the referrer's name in the list; else the referrer's
// host without "www." ("android-app://" + the app for an app referrer);
// Direct when the referrer is empty, not an http, https or android-app URL,
// on localhost, or on the page's own site.
func (l *List) Source(referrer, pageURL string) string {
	if tag := taggedSource(pageURL); tag != "" {
		return l.name(tag)
	}
	r, ok := parseReferrer(referrer)
	if !ok || r.host == "localhost" || sameSite(r.host, pageHost(pageURL)) {
		return Direct
	}
	if name := l.known(r); name != "" {
		return name
	}
	host := strings.TrimPrefix(r.host, "www.")
	if r.app {
		return "android-app://" + host
	}
	return host
}

// name is the list's name for a tagged source, or the tag itself when the
// list has none (Plausible keeps an unknown utm_source as it is).
func (l *List) name(tag string) string {
	if len(tag) > maxNameKey {
		return tag
	}
	var buf [maxNameKey]byte
	for i := 0; i < len(tag); i++ {
		buf[i] = lowerByte(tag[i])
	}
	if name, ok := l.names[string(buf[:len(tag)])]; ok {
		return name
	}
	return tag
}

// known is the list's name for a referrer, "" when it has none. A web host
// not listed is looked up again without its first label (m.facebook.com
// as facebook.com), as Snowplow's parser does, down to two labels; an app
// is matched exactly, since its id is not a host name.
func (l *List) known(r referrer) string {
	h := r.host
	for {
		if e, ok := l.hosts[h]; ok {
			for _, p := range e.paths {
				if strings.HasPrefix(r.path, p.prefix) {
					return p.name
				}
			}
			if e.name != "" {
				return e.name
			}
		}
		if r.app {
			return ""
		}
		i := strings.IndexByte(h, '.')
		if i < 0 || strings.IndexByte(h[i+1:], '.') < 0 {
			return ""
		}
		h = h[i+1:]
	}
}

// referrer is the part of a referrer URL a source is made of.
type referrer struct {
	host string // lower case, no port, no trailing dot
	path string // from the first "/" after the host to "?" or "#"
	app  bool   // android-app://
}

// parseReferrer reads an http, https or android-app URL with a valid host.
func parseReferrer(s string) (referrer, bool) {
	s = strings.TrimSpace(s)
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !strings.HasPrefix(rest, "//") {
		return referrer{}, false
	}
	var r referrer
	switch {
	case strings.EqualFold(scheme, "http"), strings.EqualFold(scheme, "https"):
	case strings.EqualFold(scheme, "android-app"):
		r.app = true
	default:
		return referrer{}, false
	}
	r.host = strings.TrimSuffix(event.URLHost(s), ".")
	if !validHost(r.host) {
		return referrer{}, false
	}
	r.path = referrerPath(rest[2:])
	return r, true
}

// referrerPath is the path of a URL from its authority on: from the first
// "/" to "?" or "#", "" when there is none. (A loop, not strings.IndexAny,
// which builds a set on every call.)
func referrerPath(s string) string {
	start := -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '/':
			if start < 0 {
				start = i
			}
		case '?', '#':
			if start < 0 {
				return ""
			}
			return s[start:i]
		}
	}
	if start < 0 {
		return ""
	}
	return s[start:]
}

// validHost accepts a DNS name (letters, digits, "-", "_", dots between
// labels) or a bracketed IPv6 literal: anything else in a referrer is not
// a site a visitor came from, and would be stored as a source otherwise.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	if h[0] == '[' {
		for i := 1; i < len(h)-1; i++ {
			c := h[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || c == ':' || c == '.') {
				return false
			}
		}
		return len(h) > 2 && h[len(h)-1] == ']'
	}
	if h[0] == '.' || strings.Contains(h, "..") {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// pageHost is the host of the page as ingest reads it (event.URLHost),
// without a trailing dot.
func pageHost(pageURL string) string {
	return strings.TrimSuffix(event.URLHost(pageURL), ".")
}

// sameSite tells whether two hosts are one site: equal once a leading
// "www." is dropped, as Plausible compares them. Other subdomains are other
// sites (blog.example.com refers to example.com).
func sameSite(a, b string) bool {
	return strings.TrimPrefix(a, "www.") == strings.TrimPrefix(b, "www.")
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lowerByte(c)
	}
	return string(b)
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
