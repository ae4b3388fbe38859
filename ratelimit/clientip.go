package ratelimit

import (
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client that sent r: the direct peer,
// or, when the peer is a trusted proxy, the right-most address of
// X-Forwarded-For that is not a trusted proxy. Addresses left of that one
// were written by the client and are ignored, so a client cannot choose
// its bucket by sending the header itself. When the walk meets an entry
// that is not an address it stops and takes the last trusted hop, for the
// same reason. IPv4-mapped IPv6 addresses are unmapped and zones dropped.
// The result is invalid only when r.RemoteAddr is not an address (a Unix
// socket); such clients share one bucket.
func (l *Limiter) ClientIP(r *http.Request) netip.Addr {
	peer := parseHop(r.RemoteAddr)
	if !peer.IsValid() || !l.trusted(peer) {
		return peer
	}
	client := peer
	vals := r.Header.Values("X-Forwarded-For")
	// Walk right to left; the cost is bounded by the trusted hops, not by
	// the length of the header.
	for i := len(vals) - 1; i >= 0; i-- {
		v := vals[i]
		for {
			j := strings.LastIndexByte(v, ',')
			hop := strings.TrimSpace(v[j+1:])
			if hop != "" { // "a,,b" and trailing commas are tolerated
				a := parseHop(hop)
				if !a.IsValid() {
					return client
				}
				client = a
				if !l.trusted(a) {
					return client
				}
			}
			if j < 0 {
				break
			}
			v = v[:j]
		}
	}
	// Every hop was trusted: the client is inside the trusted networks,
	// and the left-most hop is the closest we know to it.
	return client
}

func (l *Limiter) trusted(a netip.Addr) bool {
	for _, p := range l.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop parses "addr", "addr:port" or "[addr]:port", as proxies differ
// in what they write, and normalizes the address.
// A string is tried first in the form it most likely has: RemoteAddr is
// always "addr:port", and a failed parse allocates its error. No string
// parses in both forms, so the order changes no result.
func parseHop(s string) netip.Addr {
	first, second := addrOnly, addrWithPort
	if withPort(s) {
		first, second = second, first
	}
	a, err := first(s)
	if err != nil {
		if a, err = second(s); err != nil {
			return netip.Addr{}
		}
	}
	return a.Unmap().WithZone("")
}

func addrOnly(s string) (netip.Addr, error) { return netip.ParseAddr(s) }

func addrWithPort(s string) (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(s)
	return ap.Addr(), err
}

// withPort reports whether s looks like "addr:port" or "[addr]:port":
// bracketed, or with exactly one colon (an IPv6 address has two or more).
func withPort(s string) bool {
	i := strings.IndexByte(s, ':')
	return strings.HasPrefix(s, "[") || (i >= 0 && strings.LastIndexByte(s, ':') == i)
}
