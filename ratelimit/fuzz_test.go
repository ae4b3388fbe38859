package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// FuzzClientIP checks, for any X-Forwarded-For value a client can send:
// the result is the peer or an address from the header; an untrusted
// peer is never overridden; and whatever a client writes in front of the
// address our proxy appended cannot change the result.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"", "203.0.113.9", "1.1.1.1, 203.0.113.9", "10.0.0.1, 10.0.0.2", "garbage", "[::1]:80, fe80::1%eth0", " ,,, "} {
		f.Add(s)
	}
	l := New(Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}})
	const proxy = "10.0.0.1:443"
	client := netip.MustParseAddr("203.0.113.77")
	f.Fuzz(func(t *testing.T, xff string) {
		req := func(peer string, vals ...string) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = peer
			for _, v := range vals {
				r.Header.Add("X-Forwarded-For", v)
			}
			return r
		}

		got := l.ClientIP(req(proxy, xff))
		if !got.IsValid() {
			t.Fatalf("invalid result for %q", xff)
		}
		if got != parseHop(proxy) && !inHeader(got, xff) {
			t.Fatalf("ClientIP = %v: neither the peer nor in %q", got, xff)
		}

		untrusted := "198.51.100.1:1"
		if got := l.ClientIP(req(untrusted, xff)); got != parseHop(untrusted) {
			t.Fatalf("untrusted peer overridden by %q: %v", xff, got)
		}

		// Our proxy appends the client's address, as its own line or after
		// the client's value; either way the client's text is ignored.
		if got := l.ClientIP(req(proxy, xff, client.String())); got != client {
			t.Fatalf("spoofed by line %q: %v", xff, got)
		}
		if got := l.ClientIP(req(proxy, xff+", "+client.String()+", 10.9.9.9")); got != client {
			t.Fatalf("spoofed by prefix %q: %v", xff, got)
		}
	})
}

func inHeader(a netip.Addr, xff string) bool {
	for _, hop := range strings.Split(xff, ",") {
		if parseHop(strings.TrimSpace(hop)) == a {
			return true
		}
	}
	return false
}
