package access

import (
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
)

// WriteKeys holds the write keys of the sites that have one, and for each
// the page origins that may send its events without the key. A nil
// *WriteKeys has no keys. It is safe for concurrent use.
type WriteKeys struct {
	keys    map[string]hash    // site: hash of its key
	origins map[string]Origins // site: its pages; never Any, absent when none
}

// NewWriteKeys returns the write keys of a map from site to key.
// No site has origins yet (see WithOrigins).
func NewWriteKeys(m map[string]string) *WriteKeys {
	w := &WriteKeys{keys: make(map[string]hash, len(m)), origins: map[string]Origins{}}
	for site, key := range m {
		w.keys[site] = hashOf(key)
	}
	return w
}

// Len returns how many sites have a key.
func (w *WriteKeys) Len() int {
	if w == nil {
		return 0
	}
	return len(w.keys)
}

// WithOrigins returns w where site's pages are the origins of patterns
// (see NewOrigins; "*" or none leaves site without pages). For tests and
// callers that build keys in code; a write-keys file lists them per line.
func (w *WriteKeys) WithOrigins(site string, patterns ...string) *WriteKeys {
	out := w.clone()
	if o := NewOrigins(patterns); !o.Any() {
		out.origins[site] = o
	}
	return out
}

// OrOrigins returns w where each keyed site without origins of its own
// gets o, the server-wide allowlist. An o that allows every origin
// changes nothing: it would let any page (any forged Origin) skip the key.
func (w *WriteKeys) OrOrigins(o Origins) *WriteKeys {
	if w == nil || o.Any() {
		return w
	}
	out := w.clone()
	for site := range out.keys {
		if _, has := out.origins[site]; !has {
			out.origins[site] = o
		}
	}
	return out
}

// SitesWithoutOrigins returns, sorted, the keyed sites that list no origin:
// no page may send their events without the key.
func (w *WriteKeys) SitesWithoutOrigins() []string {
	if w == nil {
		return nil
	}
	var out []string
	for site := range w.keys {
		if _, has := w.origins[site]; !has {
			out = append(out, site)
		}
	}
	slices.Sort(out)
	return out
}

// PageAllowed reports whether origin (an Origin header value, or for the
// pixel the origin of Referer) is one of site's pages, which may send its
// events without the key. Unlike Origins.Allowed, the server's own host is
// not implied: the Host header is as easy to forge as the Origin.
func (w *WriteKeys) PageAllowed(site, origin string) bool {
	if w == nil || origin == "" {
		return false
	}
	o, has := w.origins[site]
	return has && o.matches(origin)
}

func (w *WriteKeys) clone() *WriteKeys {
	out := &WriteKeys{keys: map[string]hash{}, origins: map[string]Origins{}}
	if w != nil {
		for k, v := range w.keys {
			out.keys[k] = v
		}
		for k, v := range w.origins {
			out.origins[k] = v
		}
	}
	return out
}

// Key is a write key presented by a request, hashed once for all the
// events of the request. The zero Key is no key.
type Key struct {
	h   hash
	set bool
}

// KeyFrom returns the write key r presents: the X-Pulse-Key header, else
// "Authorization: Bearer KEY".
func KeyFrom(r *http.Request) Key {
	k := strings.TrimSpace(r.Header.Get("X-Pulse-Key"))
	if k == "" {
		if h := r.Header.Get("Authorization"); h != "" {
			if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
				k = strings.TrimSpace(tok)
			}
		}
	}
	if k == "" {
		return Key{}
	}
	return Key{h: hashOf(k), set: true}
}

// Present reports whether the request sent a key at all.
func (k Key) Present() bool { return k.set }

// Check says whether site has a write key and whether k is it. Sites
// without a key need none (required is false).
func (w *WriteKeys) Check(site string, k Key) (required, ok bool) {
	if w == nil {
		return false, false
	}
	want, has := w.keys[site]
	if !has {
		return false, false
	}
	return true, k.set && want.equal(&k.h)
}

// Origins is an allowlist of the Origins that may send browser events.
// The zero value allows every origin. It is safe for concurrent use.
type Origins struct {
	patterns []string // lower case
}

// NewOrigins returns the allowlist of patterns: path.Match patterns for
// the Origin's host ("*.example.com", "example.com:8443"), or for
// scheme://host when the pattern has "://" ("https://app.example.com").
// "*" alone, or no pattern, allows every origin. The origin of the Pulse
// server itself (same host) is always allowed, so its own demo page works.
func NewOrigins(patterns []string) Origins {
	var o Origins
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "*" {
			return Origins{}
		}
		if p != "" {
			o.patterns = append(o.patterns, p)
		}
	}
	return o
}

// Any reports whether every origin is allowed.
func (o Origins) Any() bool { return len(o.patterns) == 0 }

// Allowed reports whether origin (an Origin header value, scheme://host)
// may send events to a server reached as host. "null" (sandboxed frames,
// file: pages) and anything unparsable is refused unless every origin is
// allowed.
func (o Origins) Allowed(origin, host string) bool {
	if o.Any() {
		return true
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, host) &&
		(u.Scheme == "http" || u.Scheme == "https") {
		return true
	}
	return o.matches(origin)
}

// matches reports whether origin matches one of the patterns.
func (o Origins) matches(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	h := strings.ToLower(u.Host)
	full := strings.ToLower(u.Scheme) + "://" + h
	for _, p := range o.patterns {
		target := h
		if strings.Contains(p, "://") {
			target = full
		}
		if ok, _ := path.Match(p, target); ok {
			return true
		}
	}
	return false
}

// ValidOriginPattern reports whether p is a usable pattern.
func ValidOriginPattern(p string) bool {
	_, err := path.Match(strings.ToLower(p), "")
	return err == nil
}
