// Package ratelimit protects Pulse's public endpoints from abuse: token
// buckets per client IP (gin middleware) and per site (called by the ingest
// handler once it has decoded a batch), and a cap on concurrent WebSocket
// connections per client IP. Every table is bounded: buckets live in LRU
// caches, and connection counts exist only while connections are open.
package ratelimit

import (
	"hash/maphash"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Disabled, given as a rate, turns that limit off. A zero rate means the
// default instead, so that a zero Config is a sensible one.
const Disabled rate.Limit = -1

// Defaults of Config.
const (
	DefaultPerIP         rate.Limit = 200
	DefaultBurstIP                  = 400
	DefaultPerSite       rate.Limit = 5000
	DefaultBurstSite                = 10000
	DefaultMaxIPs                   = 100_000
	DefaultMaxSites                 = 10_000
	DefaultMaxConnsPerIP            = 64
	DefaultMaxConns                 = 100_000
)

// Config configures a Limiter. Zero values mean the documented defaults.
type Config struct {
	// PerIP is the sustained request rate allowed per client IP, BurstIP
	// the bucket size. Defaults 200/s and 400; PerIP < 0 (Disabled)
	// turns the per-IP limit off. IPv6 clients are limited per /64,
	// since one host usually holds a whole /64 and could rotate through it.
	PerIP   rate.Limit
	BurstIP int
	// PerSite is the sustained event rate allowed per site, BurstSite the
	// bucket size. Defaults 5000/s and 10000; PerSite < 0 turns it off.
	PerSite   rate.Limit
	BurstSite int
	// MaxIPs bounds the per-IP buckets (least recently used are evicted);
	// default 100000. An evicted client starts again with a full bucket,
	// which only the least active clients can notice.
	MaxIPs int
	// MaxSites bounds the per-site buckets likewise; default 10000.
	MaxSites int
	// MaxConnsPerIP caps concurrent connections taken with AcquireConn per
	// client IP (per /64 for IPv6); default 64, < 0 means no cap.
	MaxConnsPerIP int
	// MaxConns caps the connections taken with AcquireConn in total,
	// which also bounds the table of counts; default 100000, < 0 means
	// no cap.
	MaxConns int
	// TrustedProxies are the networks of the reverse proxies and load
	// balancers in front of Pulse. X-Forwarded-For is honoured only when
	// the direct peer is in one of them, and then the client is the
	// right-most address of the header that is not in them. Empty means
	// the header is ignored and the client is the direct peer.
	TrustedProxies []netip.Prefix
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Registerer receives the metrics; nil means they are not registered.
	Registerer prometheus.Registerer
}

func (c Config) withDefaults() Config {
	if c.PerIP == 0 {
		c.PerIP = DefaultPerIP
	}
	if c.BurstIP <= 0 {
		c.BurstIP = DefaultBurstIP
	}
	if c.PerSite == 0 {
		c.PerSite = DefaultPerSite
	}
	if c.BurstSite <= 0 {
		c.BurstSite = DefaultBurstSite
	}
	if c.MaxIPs <= 0 {
		c.MaxIPs = DefaultMaxIPs
	}
	if c.MaxSites <= 0 {
		c.MaxSites = DefaultMaxSites
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	prefixes := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for _, p := range c.TrustedProxies {
		if p.IsValid() {
			// A 4in6 peer is unmapped before matching, so match the
			// plain IPv4 network too.
			prefixes = append(prefixes, p.Masked())
		}
	}
	c.TrustedProxies = prefixes
	return c
}

// Limiter applies the limits of a Config. It is safe for concurrent use.
type Limiter struct {
	cfg   Config
	ips   *buckets[netip.Addr] // nil when the per-IP limit is off
	sites *buckets[string]     // nil when the per-site limit is off
	conns connTable
	m     metrics
}

// New returns a Limiter for cfg. It panics if cfg.Registerer refuses the
// metrics for a reason other than their being registered already, which
// is a programming error; when they are, the registered ones are shared.
func New(cfg Config) *Limiter {
	cfg = cfg.withDefaults()
	l := &Limiter{cfg: cfg}
	if cfg.PerIP > 0 {
		l.ips = newBuckets[netip.Addr](cfg.PerIP, cfg.BurstIP, cfg.MaxIPs)
	}
	if cfg.PerSite > 0 {
		l.sites = newBuckets[string](cfg.PerSite, cfg.BurstSite, cfg.MaxSites)
	}
	l.conns = connTable{perIP: cfg.MaxConnsPerIP, total: cfg.MaxConns, n: map[netip.Addr]int{}}
	l.m = newMetrics(cfg.Registerer, l)
	return l
}

// AllowIP takes n tokens from the bucket of client ip. When the bucket
// holds too few it takes none and says how long until it will hold n.
// The middleware calls it with n = 1; a WebSocket reader may use it to
// limit messages.
func (l *Limiter) AllowIP(ip netip.Addr, n int) (bool, time.Duration) {
	if l.ips == nil {
		return true, 0
	}
	ok, d := l.ips.allow(bucketKey(ip), n, l.cfg.Now())
	if !ok {
		l.m.limitedIP.Inc()
	}
	return ok, d
}

// AllowSite takes n tokens (events) from the bucket of site. When the
// bucket holds too few it takes none and says how long until it will hold
// n. A batch larger than the burst is charged as a whole burst, so it
// passes once the bucket is full instead of never.
func (l *Limiter) AllowSite(site string, n int) (bool, time.Duration) {
	if l.sites == nil {
		return true, 0
	}
	ok, d := l.sites.allow(site, n, l.cfg.Now())
	if !ok {
		l.m.limitedSite.Inc()
	}
	return ok, d
}

// bucketKey is the key of ip's bucket and connection count: the address
// itself for IPv4, its /64 for IPv6.
func bucketKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// buckets is a sharded LRU cache of token buckets. Shards keep the lock
// of one from serializing every request; each holds at most max/shards
// buckets, so the whole holds at most max.
type buckets[K comparable] struct {
	limit  rate.Limit
	burst  int
	seed   maphash.Seed
	shards []*lru[K]
}

func newBuckets[K comparable](limit rate.Limit, burst, max int) *buckets[K] {
	n := 16
	if max < 16*64 {
		n = 1 // small tables are tests or tiny deployments: keep the bound exact
	}
	b := &buckets[K]{limit: limit, burst: burst, seed: maphash.MakeSeed(), shards: make([]*lru[K], n)}
	for i := range b.shards {
		b.shards[i] = newLRU[K](max / n)
	}
	return b
}

func (b *buckets[K]) allow(key K, n int, now time.Time) (bool, time.Duration) {
	n = min(max(n, 1), b.burst)
	s := b.shards[maphash.Comparable(b.seed, key)%uint64(len(b.shards))]
	lim := s.get(key, func() *rate.Limiter { return rate.NewLimiter(b.limit, b.burst) })
	r := lim.ReserveN(now, n)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// len returns how many buckets are held.
func (b *buckets[K]) len() int {
	n := 0
	for _, s := range b.shards {
		n += s.len()
	}
	return n
}

// lru is a bounded map from keys to token buckets that evicts the least
// recently used bucket when full.
type lru[K comparable] struct {
	mu   sync.Mutex
	max  int
	m    map[K]*node[K]
	head node[K] // sentinel: head.next is the most recently used
}

type node[K comparable] struct {
	key        K
	prev, next *node[K]
	lim        *rate.Limiter
}

func newLRU[K comparable](max int) *lru[K] {
	c := &lru[K]{max: max, m: make(map[K]*node[K])}
	c.head.next, c.head.prev = &c.head, &c.head
	return c
}

// get returns the bucket of key, making it with mk when absent. The
// returned limiter stays valid after eviction (it is just forgotten), so
// callers use it outside the lock.
func (c *lru[K]) get(key K, mk func() *rate.Limiter) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.m[key]; ok {
		n.unlink()
		c.pushFront(n)
		return n.lim
	}
	if len(c.m) >= c.max {
		// Not reused: a caller may still hold the evicted limiter.
		old := c.head.prev
		old.unlink()
		delete(c.m, old.key)
	}
	n := &node[K]{lim: mk()}
	n.key = cloneKey(key)
	c.m[n.key] = n
	c.pushFront(n)
	return n.lim
}

func (c *lru[K]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *lru[K]) pushFront(n *node[K]) {
	n.prev, n.next = &c.head, c.head.next
	c.head.next.prev = n
	c.head.next = n
}

func (n *node[K]) unlink() {
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}

// cloneKey copies string keys, which may point into a large request
// buffer that the cache would otherwise keep alive.
func cloneKey[K comparable](k K) K {
	if s, ok := any(k).(string); ok {
		return any(strings.Clone(s)).(K)
	}
	return k
}
