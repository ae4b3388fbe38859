package access

import (
	"net/http"
	"net/url"
	"path"
	"strings"
)

// WriteKeys holds the write keys of the sites that have one. A nil
// *WriteKeys has no keys. It is safe for concurrent use.
type WriteKeys struct {
	keys map[string]hash // site: hash of its key
}

// NewWriteKeys returns the write keys of a map from site to key.
func NewWriteKeys(m map[string]string) *WriteKeys {
	w := &WriteKeys{keys: make(map[string]hash, len(m))}
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
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
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
