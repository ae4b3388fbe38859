package push

import (
	"net"
	"net/http"
	"sync"
)

// unauthSlots caps the connections that upgraded without a token and have
// not sent their auth message yet, per client address and in all. Such a
// connection costs a socket and a goroutine while proving nothing, so it
// gets far fewer slots than an authenticated one, and for a short time.
type unauthSlots struct {
	perAddr, total int // < 0: no cap

	mu  sync.Mutex
	n   map[string]int // under mu
	sum int            // under mu
}

func newUnauthSlots(perAddr, total int) *unauthSlots {
	return &unauthSlots{perAddr: perAddr, total: total, n: map[string]int{}}
}

// Reasons of a refused unauthenticated upgrade, the label of
// pulse_push_unauth_refused_total.
const (
	refusedPerAddr = "per_address"
	refusedTotal   = "total"
)

// acquire takes a slot for addr. When refused it returns the reason;
// otherwise a release that may be called more than once.
func (s *unauthSlots) acquire(addr string) (release func(), refused string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.perAddr >= 0 && s.n[addr] >= s.perAddr:
		return nil, refusedPerAddr
	case s.total >= 0 && s.sum >= s.total:
		return nil, refusedTotal
	}
	s.n[addr]++
	s.sum++
	return sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.sum--
		if s.n[addr]--; s.n[addr] <= 0 {
			delete(s.n, addr)
		}
	}), ""
}

// peerAddr is the default Config.ClientAddr: the host of the peer.
func peerAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
