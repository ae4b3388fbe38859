package ratelimit

import (
	"net/netip"
	"sync/atomic"
	"testing"
)

// BenchmarkAllowIP measures the per-request cost of the IP limit with a
// full table: 200k clients cycling through 100k buckets, so half the calls
// evict.
func BenchmarkAllowIP(b *testing.B) {
	l := New(Config{})
	var next atomic.Uint32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) % 200_000
			l.AllowIP(netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)}), 1)
		}
	})
}

// BenchmarkAllowSite measures the site limit for a few busy sites.
func BenchmarkAllowSite(b *testing.B) {
	l := New(Config{PerSite: 1e9, BurstSite: 1e9})
	sites := []string{"demo", "shop", "blog", "docs"}
	var next atomic.Uint32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			l.AllowSite(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), sites[i%4], 10)
		}
	})
}
