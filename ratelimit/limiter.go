// Package ratelimit protects Pulse's public endpoints from abuse: token
// buckets per client IP (gin middleware), per site and per site and client
// (called by the ingest handler once it has decoded a batch), and a cap on
// concurrent WebSocket connections per client IP. Every table is bounded:
// buckets live in LRU caches, and connection counts exist only while
// connections are open.
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
	DefaultPerIP          rate.Limit = 200
	DefaultBurstIP                   = 400
	DefaultPerSite        rate.Limit = 5000
	DefaultBurstSite                 = 10000
	DefaultMaxIPs                    = 100_000
	DefaultMaxSites                  = 10_000
	DefaultClientShare               = 0.25
	DefaultMaxSiteClients            = 100_000
	DefaultMaxConnsPerIP             = 64
	DefaultMaxConns                  = 100_000
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
	// ClientShare is the share of a site's rate and burst that one client
	// (IP, /64 for IPv6) may take, so that one sender cannot exhaust the
	// site's budget and starve its other senders. Default 0.25; a value
	// of 1 or more, or below 0, turns the per-client share off.
	ClientShare float64
	// MaxIPs bounds the per-IP buckets (least recently used are evicted);
	// default 100000. An evicted client starts again with a full bucket,
	// which only the least active clients can notice.
	MaxIPs int
	// MaxSites bounds the per-site buckets likewise; default 10000.
	MaxSites int
	// MaxSiteClients bounds the buckets per site and client likewise;
	// default 100000. Only the least recently active pairs are evicted,
	// so a sender that keeps sending keeps its (drawn-down) bucket.
	MaxSiteClients int
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
	if c.ClientShare == 0 {
		c.ClientShare = DefaultClientShare
	}
	if c.MaxSiteClients <= 0 {
		c.MaxSiteClients = DefaultMaxSiteClients
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
	pairs *buckets[siteClient] // nil when the site limit or the client share is off
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
		if cfg.ClientShare > 0 && cfg.ClientShare < 1 {
			burst := max(int(float64(cfg.BurstSite)*cfg.ClientShare), 1)
			l.pairs = newBuckets[siteClient](cfg.PerSite*rate.Limit(cfg.ClientShare), burst, cfg.MaxSiteClients)
		}
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

// siteClient keys the bucket of one client's share of one site.
type siteClient struct {
	site   string
	client netip.Addr
}

// AllowSite takes n tokens (events) from client's share of site and from
// the bucket of site. When either holds too few it takes none and says how
// long until the one that refused will hold n. A batch larger than a burst is charged as a
// whole burst, so it passes once the bucket is full instead of never.
// The share is taken first: a sender over its share is refused without
// drawing on the site's bucket, which stays for the site's other clients.
func (l *Limiter) AllowSite(client netip.Addr, site string, n int) (bool, time.Duration) {
	if l.sites == nil {
		return true, 0
	}
	now := l.cfg.Now()
	var share *rate.Reservation
	if l.pairs != nil {
		r, d := l.pairs.reserve(siteClient{site: site, client: bucketKey(client)}, n, now)
		if d > 0 {
			l.m.limitedSiteClient.Inc()
			return false, d
		}
		share = r
	}
	if _, d := l.sites.reserve(site, n, now); d > 0 {
		if share != nil {
			share.CancelAt(now) // the client is refused: give its share back
		}
		l.m.limitedSite.Inc()
		return false, d
	}
	return true, 0
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

// allow takes n tokens from key's bucket, or none and the wait.
func (b *buckets[K]) allow(key K, n int, now time.Time) (bool, time.Duration) {
	_, d := b.reserve(key, n, now)
	return d == 0, d
}

// reserve takes n tokens (at most a burst) from key's bucket and returns
// them as a reservation the caller may cancel; when the bucket holds too
// few it takes none and returns the wait, which is then above zero.
func (b *buckets[K]) reserve(key K, n int, now time.Time) (*rate.Reservation, time.Duration) {
	n = min(max(n, 1), b.burst)
	s := b.shards[maphash.Comparable(b.seed, key)%uint64(len(b.shards))]
	lim := s.get(key, func() *rate.Limiter { return rate.NewLimiter(b.limit, b.burst) })
	r := lim.ReserveN(now, n)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, d
	}
	return r, 0
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
	switch v := any(k).(type) {
	case string:
		return any(strings.Clone(v)).(K)
	case siteClient:
		v.site = strings.Clone(v.site)
		return any(v).(K)
	}
	return k
}
