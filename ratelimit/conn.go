package ratelimit

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// connTable counts open connections per client. An entry exists only
// while its client holds a connection, and the total is capped, so the
// table is bounded by MaxConns.
type connTable struct {
	mu    sync.Mutex
	perIP int // < 0: no cap
	total int // < 0: no cap
	sum   int
	n     map[netip.Addr]int
}

// AcquireConn takes one connection slot for client ip (per /64 for IPv6).
// It fails when the client already holds MaxConnsPerIP connections or
// all MaxConns are taken. release gives the slot back; calling it more
// than once is harmless, so it can be deferred beside an explicit call.
func (l *Limiter) AcquireConn(ip netip.Addr) (release func(), ok bool) {
	key := bucketKey(ip)
	t := &l.conns
	t.mu.Lock()
	if (t.perIP >= 0 && t.n[key] >= t.perIP) || (t.total >= 0 && t.sum >= t.total) {
		t.mu.Unlock()
		l.m.limitedConn.Inc()
		return func() {}, false
	}
	t.n[key]++
	t.sum++
	t.mu.Unlock()
	var done atomic.Bool
	return func() {
		if done.Swap(true) {
			return
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		t.sum--
		if t.n[key]--; t.n[key] <= 0 {
			delete(t.n, key)
		}
	}, true
}

// Conns returns how many connection slots ip (its /64 for IPv6) holds.
func (l *Limiter) Conns(ip netip.Addr) int {
	l.conns.mu.Lock()
	defer l.conns.mu.Unlock()
	return l.conns.n[bucketKey(ip)]
}
