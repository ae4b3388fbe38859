package ratelimit

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// clock is a manual clock for Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func router(l *Limiter) *gin.Engine {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(l.Middleware())
	r.GET("/", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	return r
}

func TestMiddleware(t *testing.T) {
	type step struct {
		advance    time.Duration
		peer       string
		xff        string
		status     int
		retryAfter string
	}
	const proxy = "10.0.0.2:4000"
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name: "burst then 429 then refill",
			cfg:  Config{PerIP: 0.5, BurstIP: 2},
			steps: []step{
				{peer: "198.51.100.1:1", status: 200},
				{peer: "198.51.100.1:2", status: 200},
				{peer: "198.51.100.1:3", status: 429, retryAfter: "2"},
				{advance: time.Second, peer: "198.51.100.1:3", status: 429, retryAfter: "1"},
				{advance: time.Second, peer: "198.51.100.1:3", status: 200},
				{peer: "198.51.100.1:3", status: 429, retryAfter: "2"},
				// Another client has its own bucket.
				{peer: "198.51.100.2:1", status: 200},
			},
		},
		{
			name: "sub-second wait rounds up to 1",
			cfg:  Config{PerIP: 100, BurstIP: 1},
			steps: []step{
				{peer: "198.51.100.1:1", status: 200},
				{peer: "198.51.100.1:1", status: 429, retryAfter: "1"},
				{advance: 10 * time.Millisecond, peer: "198.51.100.1:1", status: 200},
			},
		},
		{
			name: "refused requests take no tokens",
			cfg:  Config{PerIP: 1, BurstIP: 1},
			steps: []step{
				{peer: "198.51.100.1:1", status: 200},
				{advance: 500 * time.Millisecond, peer: "198.51.100.1:1", status: 429, retryAfter: "1"},
				{peer: "198.51.100.1:1", status: 429, retryAfter: "1"},
				{advance: 500 * time.Millisecond, peer: "198.51.100.1:1", status: 200},
			},
		},
		{
			name: "untrusted peer cannot spoof X-Forwarded-For",
			cfg:  Config{PerIP: 1, BurstIP: 1, TrustedProxies: prefixes(t, "10.0.0.0/8")},
			steps: []step{
				{peer: "198.51.100.1:1", xff: "203.0.113.1", status: 200},
				{peer: "198.51.100.1:1", xff: "203.0.113.2", status: 429, retryAfter: "1"},
				{peer: "198.51.100.1:1", xff: "203.0.113.3, 10.0.0.9", status: 429, retryAfter: "1"},
			},
		},
		{
			name: "trusted proxy: clients behind it are told apart",
			cfg:  Config{PerIP: 1, BurstIP: 1, TrustedProxies: prefixes(t, "10.0.0.0/8")},
			steps: []step{
				{peer: proxy, xff: "203.0.113.1", status: 200},
				{peer: proxy, xff: "203.0.113.2", status: 200},
				{peer: proxy, xff: "203.0.113.1", status: 429, retryAfter: "1"},
				// A client prepending addresses still lands in its own bucket.
				{peer: proxy, xff: "203.0.113.99, 203.0.113.1", status: 429, retryAfter: "1"},
				{peer: proxy, xff: "198.51.100.7, 203.0.113.2, 10.1.2.3", status: 429, retryAfter: "1"},
			},
		},
		{
			name: "IPv6 clients share a /64",
			cfg:  Config{PerIP: 1, BurstIP: 1},
			steps: []step{
				{peer: "[2001:db8:1:2::1]:1", status: 200},
				{peer: "[2001:db8:1:2:ffff::9]:1", status: 429, retryAfter: "1"},
				{peer: "[2001:db8:1:3::1]:1", status: 200},
			},
		},
		{
			name: "disabled",
			cfg:  Config{PerIP: Disabled, BurstIP: 1},
			steps: []step{
				{peer: "198.51.100.1:1", status: 200},
				{peer: "198.51.100.1:1", status: 200},
				{peer: "198.51.100.1:1", status: 200},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			tt.cfg.Now = clk.Now
			reg := prometheus.NewRegistry()
			tt.cfg.Registerer = reg
			l := New(tt.cfg)
			h := router(l)
			refused := 0
			for i, s := range tt.steps {
				clk.Add(s.advance)
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				req.RemoteAddr = s.peer
				if s.xff != "" {
					req.Header.Set("X-Forwarded-For", s.xff)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != s.status {
					t.Fatalf("step %d: status %d, want %d", i, rec.Code, s.status)
				}
				if got := rec.Header().Get("Retry-After"); got != s.retryAfter {
					t.Fatalf("step %d: Retry-After %q, want %q", i, got, s.retryAfter)
				}
				if s.status != 429 {
					continue
				}
				refused++
				var body struct{ Error string }
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Fatalf("step %d: body %q: %v", i, rec.Body, err)
				}
				if !strings.HasPrefix(body.Error, "rate limit: ") || !strings.Contains(body.Error, "retry in "+s.retryAfter+"s") {
					t.Fatalf("step %d: error %q", i, body.Error)
				}
			}
			if got := counterValue(l.m.limitedIP); got != float64(refused) {
				t.Fatalf("limited_total{scope=ip} = %v, want %d", got, refused)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	trusted := prefixes(t, "10.0.0.0/8", "2001:db8:ffff::/48")
	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string
		want    string // "" means invalid
	}{
		{"no proxies configured", nil, "10.0.0.1:1", []string{"203.0.113.9"}, "10.0.0.1"},
		{"untrusted peer", trusted, "198.51.100.1:1", []string{"203.0.113.9"}, "198.51.100.1"},
		{"trusted peer without header", trusted, "10.0.0.1:1", nil, "10.0.0.1"},
		{"trusted peer", trusted, "10.0.0.1:1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"spoofed left part ignored", trusted, "10.0.0.1:1", []string{"1.1.1.1, 8.8.8.8, 203.0.113.9"}, "203.0.113.9"},
		{"chain of trusted proxies", trusted, "10.0.0.1:1", []string{"6.6.6.6, 203.0.113.9, 10.9.9.9, 10.8.8.8"}, "203.0.113.9"},
		{"header lines in order", trusted, "10.0.0.1:1", []string{"6.6.6.6, 203.0.113.9", "10.9.9.9"}, "203.0.113.9"},
		{"right-most line wins", trusted, "10.0.0.1:1", []string{"203.0.113.9", "198.51.100.4"}, "198.51.100.4"},
		{"all hops trusted", trusted, "10.0.0.1:1", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		{"garbage stops the walk", trusted, "10.0.0.1:1", []string{"203.0.113.9, garbage, 10.2.2.2"}, "10.2.2.2"},
		{"garbage right-most", trusted, "10.0.0.1:1", []string{"203.0.113.9, nope"}, "10.0.0.1"},
		{"empty entries tolerated", trusted, "10.0.0.1:1", []string{" , 203.0.113.9 ,, "}, "203.0.113.9"},
		{"hop with port", trusted, "10.0.0.1:1", []string{"203.0.113.9:5555"}, "203.0.113.9"},
		{"IPv6 hop with port", trusted, "10.0.0.1:1", []string{"[2001:db8::1]:80"}, "2001:db8::1"},
		{"IPv6 hop with zone", trusted, "10.0.0.1:1", []string{"fe80::1%eth0"}, "fe80::1"},
		{"mapped hop unmapped", trusted, "10.0.0.1:1", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{"mapped peer matches IPv4 network", trusted, "[::ffff:10.0.0.1]:1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"IPv6 trusted peer", trusted, "[2001:db8:ffff::1]:1", []string{"2001:db8:1::5, 2001:db8:ffff::7"}, "2001:db8:1::5"},
		{"peer without port", trusted, "198.51.100.1", nil, "198.51.100.1"},
		{"unix socket peer", trusted, "@", []string{"203.0.113.9"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(Config{TrustedProxies: tt.trusted})
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			got := l.ClientIP(req)
			if tt.want == "" {
				if got.IsValid() {
					t.Fatalf("ClientIP = %v, want invalid", got)
				}
				return
			}
			if want := netip.MustParseAddr(tt.want); got != want {
				t.Fatalf("ClientIP = %v, want %v", got, want)
			}
		})
	}
}

func TestAllowSite(t *testing.T) {
	type step struct {
		advance time.Duration
		client  string // "" is 192.0.2.1
		site    string
		n       int
		ok      bool
		wait    time.Duration
	}
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name: "burst, refusal, refill",
			cfg:  Config{PerSite: 10, BurstSite: 20, ClientShare: 1},
			steps: []step{
				{site: "demo", n: 15, ok: true},
				{site: "demo", n: 10, ok: false, wait: 500 * time.Millisecond},
				{site: "demo", n: 5, ok: true},
				{site: "other", n: 20, ok: true},
				{advance: 500 * time.Millisecond, site: "demo", n: 6, ok: false, wait: 100 * time.Millisecond},
				{site: "demo", n: 5, ok: true},
				{advance: 2 * time.Second, site: "demo", n: 20, ok: true},
			},
		},
		{
			name: "batch larger than burst passes on a full bucket",
			cfg:  Config{PerSite: 10, BurstSite: 20, ClientShare: 1},
			steps: []step{
				{site: "demo", n: 100, ok: true},
				{site: "demo", n: 100, ok: false, wait: 2 * time.Second},
				{advance: time.Second, site: "demo", n: 100, ok: false, wait: time.Second},
				{advance: time.Second, site: "demo", n: 100, ok: true},
			},
		},
		{
			name: "zero events count as one",
			cfg:  Config{PerSite: 1, BurstSite: 1, ClientShare: -1},
			steps: []step{
				{site: "demo", n: 0, ok: true},
				{site: "demo", n: 0, ok: false, wait: time.Second},
			},
		},
		{
			// Share 0.25 of 10/s and 20: 2.5/s and 5 per client.
			name: "one client takes at most its share",
			cfg:  Config{PerSite: 10, BurstSite: 20, ClientShare: 0.25},
			steps: []step{
				{client: "192.0.2.1", site: "demo", n: 5, ok: true},
				{client: "192.0.2.1", site: "demo", n: 5, ok: false, wait: 2 * time.Second},
				{client: "192.0.2.1", site: "demo", n: 1, ok: false, wait: 400 * time.Millisecond},
				{client: "192.0.2.2", site: "demo", n: 5, ok: true},
				{client: "192.0.2.3", site: "demo", n: 5, ok: true},
				{client: "192.0.2.4", site: "demo", n: 5, ok: true},
				// The site is empty: refused by it, the share given back.
				{client: "192.0.2.5", site: "demo", n: 5, ok: false, wait: 500 * time.Millisecond},
				{advance: 500 * time.Millisecond, client: "192.0.2.5", site: "demo", n: 5, ok: true},
				// Another site's share of the same client is its own.
				{client: "192.0.2.1", site: "other", n: 5, ok: true},
			},
		},
		{
			name: "an IPv6 /64 is one client",
			cfg:  Config{PerSite: 10, BurstSite: 20},
			steps: []step{
				{client: "2001:db8::1", site: "demo", n: 5, ok: true},
				{client: "2001:db8::2", site: "demo", n: 1, ok: false, wait: 400 * time.Millisecond},
				{client: "2001:db8:0:1::1", site: "demo", n: 5, ok: true},
			},
		},
		{
			name: "share of 1 or more is off",
			cfg:  Config{PerSite: 10, BurstSite: 20, ClientShare: 1},
			steps: []step{
				{site: "demo", n: 20, ok: true},
				{site: "demo", n: 1, ok: false, wait: 100 * time.Millisecond},
			},
		},
		{
			name: "disabled",
			cfg:  Config{PerSite: Disabled, BurstSite: 1},
			steps: []step{
				{site: "demo", n: 1000, ok: true},
				{site: "demo", n: 1000, ok: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			tt.cfg.Now = clk.Now
			l := New(tt.cfg)
			refused := 0
			for i, s := range tt.steps {
				clk.Add(s.advance)
				client := cmp.Or(s.client, "192.0.2.1")
				ok, wait := l.AllowSite(netip.MustParseAddr(client), s.site, s.n)
				if ok != s.ok || wait != s.wait {
					t.Fatalf("step %d: AllowSite(%s, %q, %d) = %v, %v; want %v, %v", i, client, s.site, s.n, ok, wait, s.ok, s.wait)
				}
				if !ok {
					refused++
				}
			}
			if got := counterValue(l.m.limitedSite) + counterValue(l.m.limitedSiteClient); got != float64(refused) {
				t.Fatalf("limited_total{scope=site|site_client} = %v, want %d", got, refused)
			}
		})
	}
}

func TestIPBucketsBounded(t *testing.T) {
	tests := []struct {
		name   string
		maxIPs int
		ips    int
	}{
		{"default bound, 150k clients", 0, 150_000},
		{"small bound", 100, 1000},
		{"under the bound", 100, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			l := New(Config{MaxIPs: tt.maxIPs, PerIP: 1, BurstIP: 1, Now: newClock().Now, Registerer: reg})
			bound := l.cfg.MaxIPs
			for i := range tt.ips {
				ip := netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)})
				if ok, _ := l.AllowIP(ip, 1); !ok {
					t.Fatalf("first request of %v refused", ip)
				}
			}
			want := min(tt.ips, bound)
			if bound >= 16*64 {
				// Sharded: each shard is bounded by bound/16; with 150k
				// random-hashed keys every shard fills up.
				want = bound / 16 * 16
			}
			entries := gaugeValue(t, reg, "pulse_ratelimit_ip_entries")
			if entries > float64(bound) || int(entries) != want {
				t.Fatalf("ip entries = %v, want %d (bound %d)", entries, want, bound)
			}
		})
	}
}

// TestSiteClientBucketsBounded: the buckets per site and client stay
// within MaxSiteClients however many clients and sites send.
func TestSiteClientBucketsBounded(t *testing.T) {
	tests := []struct {
		name           string
		max            int
		clients, sites int
		want           int
	}{
		{"small bound", 100, 300, 4, 100},
		{"under the bound", 100, 20, 2, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			l := New(Config{MaxSiteClients: tt.max, Now: newClock().Now, Registerer: reg})
			for i := range tt.clients {
				for j := range tt.sites {
					ip := netip.AddrFrom4([4]byte{100, 0, byte(i >> 8), byte(i)})
					if ok, _ := l.AllowSite(ip, "s"+strconv.Itoa(j), 1); !ok {
						t.Fatalf("first event of %v refused", ip)
					}
				}
			}
			if got := gaugeValue(t, reg, "pulse_ratelimit_site_client_entries"); int(got) != tt.want {
				t.Fatalf("site_client entries = %v, want %d (bound %d)", got, tt.want, tt.max)
			}
		})
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	clk := newClock()
	l := New(Config{MaxIPs: 3, PerIP: 1, BurstIP: 1, Now: clk.Now})
	ip := func(b byte) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, b}) }
	steps := []struct {
		ip byte
		ok bool
	}{
		{1, true}, {2, true}, {3, true}, // table: 3 2 1
		{1, false}, // 1 is drained and now most recent: 1 3 2
		{4, true},  // evicts 2: 4 1 3
		{1, false}, // 1 stayed drained
		{2, true},  // 2 was forgotten, so its bucket is full again; evicts 3
		{3, true},  // likewise; evicts 4
		{1, false},
	}
	for i, s := range steps {
		if ok, _ := l.AllowIP(ip(s.ip), 1); ok != s.ok {
			t.Fatalf("step %d: AllowIP(%v) = %v, want %v", i, ip(s.ip), ok, s.ok)
		}
	}
	if n := l.ips.len(); n != 3 {
		t.Fatalf("entries = %d, want 3", n)
	}
}

func TestAcquireConn(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.1")
	b := netip.MustParseAddr("198.51.100.2")
	v6a := netip.MustParseAddr("2001:db8::1")
	v6b := netip.MustParseAddr("2001:db8::2")
	type op struct {
		acquire netip.Addr // valid: acquire; invalid: release the last held
		ok      bool
	}
	tests := []struct {
		name string
		cfg  Config
		ops  []op
	}{
		{"per IP cap", Config{MaxConnsPerIP: 2}, []op{
			{acquire: a, ok: true}, {acquire: a, ok: true}, {acquire: a, ok: false},
			{acquire: b, ok: true},
			{}, // releases b
			{}, // releases a
			{acquire: a, ok: true}, {acquire: a, ok: false},
		}},
		{"total cap", Config{MaxConnsPerIP: 5, MaxConns: 2}, []op{
			{acquire: a, ok: true}, {acquire: b, ok: true}, {acquire: a, ok: false}, {acquire: b, ok: false},
			{}, {acquire: a, ok: true},
		}},
		{"IPv6 per /64", Config{MaxConnsPerIP: 1}, []op{
			{acquire: v6a, ok: true}, {acquire: v6b, ok: false}, {}, {acquire: v6b, ok: true},
		}},
		{"no caps", Config{MaxConnsPerIP: -1, MaxConns: -1}, []op{
			{acquire: a, ok: true}, {acquire: a, ok: true}, {acquire: a, ok: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.cfg)
			var held []func()
			refused := 0
			for i, o := range tt.ops {
				if !o.acquire.IsValid() {
					rel := held[len(held)-1]
					held = held[:len(held)-1]
					rel()
					rel() // a second call must not free another slot
					continue
				}
				rel, ok := l.AcquireConn(o.acquire)
				if ok != o.ok {
					t.Fatalf("op %d: AcquireConn(%v) ok = %v, want %v", i, o.acquire, ok, o.ok)
				}
				if ok {
					held = append(held, rel)
				} else {
					refused++
					rel() // harmless
				}
			}
			for _, rel := range held {
				rel()
			}
			if n := len(l.conns.n); n != 0 || l.conns.sum != 0 {
				t.Fatalf("after releasing all: %d entries, sum %d", n, l.conns.sum)
			}
			if got := counterValue(l.m.limitedConn); got != float64(refused) {
				t.Fatalf("limited_total{scope=conn} = %v, want %d", got, refused)
			}
		})
	}
}

func TestAcquireConnConcurrent(t *testing.T) {
	l := New(Config{MaxConnsPerIP: 8})
	ip := netip.MustParseAddr("198.51.100.1")
	var wg sync.WaitGroup
	var mu sync.Mutex
	most := 0
	for range 32 {
		wg.Go(func() {
			for range 200 {
				rel, ok := l.AcquireConn(ip)
				if !ok {
					continue
				}
				mu.Lock()
				most = max(most, l.Conns(ip))
				mu.Unlock()
				rel()
			}
		})
	}
	wg.Wait()
	if most > 8 || most < 1 {
		t.Fatalf("most connections held at once = %d, want 1..8", most)
	}
	if n := l.Conns(ip); n != 0 {
		t.Fatalf("%d slots still held", n)
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		wait time.Duration
		want int
	}{
		{0, 1}, {-time.Second, 1}, {time.Nanosecond, 1}, {time.Second, 1},
		{time.Second + time.Nanosecond, 2}, {90 * time.Second, 90}, {time.Duration(1<<63 - 1), 2147483647},
	}
	for _, tt := range tests {
		if got := RetryAfter(tt.wait); got != tt.want {
			t.Errorf("RetryAfter(%v) = %d, want %d", tt.wait, got, tt.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	l := New(Config{})
	c := l.cfg
	if c.PerIP != DefaultPerIP || c.BurstIP != DefaultBurstIP || c.PerSite != DefaultPerSite || c.BurstSite != DefaultBurstSite ||
		c.MaxIPs != DefaultMaxIPs || c.MaxSites != DefaultMaxSites || c.MaxConnsPerIP != DefaultMaxConnsPerIP || c.MaxConns != DefaultMaxConns {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if l.ips == nil || l.sites == nil {
		t.Fatal("limits off by default")
	}
	if ok, _ := l.AllowIP(netip.MustParseAddr("192.0.2.1"), DefaultBurstIP); !ok {
		t.Fatal("a full default burst was refused")
	}
}

func TestSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := New(Config{PerIP: 1, BurstIP: 1, Registerer: reg})
	b := New(Config{PerIP: 1, BurstIP: 1, Registerer: reg})
	ip := netip.MustParseAddr("192.0.2.1")
	for _, l := range []*Limiter{a, b} {
		l.AllowIP(ip, 1)
		l.AllowIP(ip, 1)
	}
	if got := counterValue(a.m.limitedIP); got != 2 {
		t.Fatalf("shared limited_total{scope=ip} = %v, want 2", got)
	}
}

// TestParseHopForms checks that parseHop, which tries "addr:port" first
// when a string looks like one, reads every form as trying the bare
// address first would, and that a peer address costs no allocation.
func TestParseHopForms(t *testing.T) {
	addrFirst := func(s string) netip.Addr {
		a, err := netip.ParseAddr(s)
		if err != nil {
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				return netip.Addr{}
			}
			a = ap.Addr()
		}
		return a.Unmap().WithZone("")
	}
	for _, s := range []string{
		"127.0.0.1:54321", "127.0.0.1", "[::1]:80", "::1", "::1:80", "1::", "[::ffff:10.0.0.1]:1",
		"::ffff:10.0.0.1", "fe80::1%eth0", "[fe80::1%eth0]:9", "1.2.3.4:", ":80", "[1.2.3.4]:80",
		"[::1]", "@", "", "garbage", "1.2.3.4:99999", "[::1]:80:81", "a:b",
	} {
		if got, want := parseHop(s), addrFirst(s); got != want {
			t.Errorf("parseHop(%q) = %v, want %v", s, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { parseHop("192.0.2.7:61234") }); n != 0 {
		t.Errorf("parseHop of a peer address: %v allocations, want 0", n)
	}
}
