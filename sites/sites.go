// Package sites is the set of sites a deployment accepts events for: the
// sites given at start (--sites), the sites an admin adds at run time, and,
// in open mode ("*"), the new sites traffic brings, capped in rate on each
// node and in total across the fleet.
//
// Sites added at run time (by an admin, or admitted in open mode) live in
// one Redis set outside every aggregate namespace, so every ingest node of a
// fleet learns them: each node loads the set at start and polls it (Run).
// An event of a site that is not admitted costs no Redis key: it is refused
// before it reaches the stream, and so before any aggregate exists.
package sites

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/pulsehq/pulse/event"
)

// Any, among the static sites, opens the set: any site is admitted, within
// the caps.
const Any = "*"

// Reasons of refusals, as ingest counts them in pulse_ingest_rejected_total.
const (
	ReasonUnknown = "site_not_allowed" // not a known site, and the set is not open
	ReasonFull    = "site_cap"         // open set: the fleet already holds Max sites
	ReasonRate    = "site_rate"        // open set: this node admitted NewPerMinute new sites this minute
)

// Default configuration values.
const (
	DefaultMax          = 1000
	DefaultNewPerMinute = 60
	DefaultBurst        = 20
	DefaultRefresh      = 2 * time.Second
)

// Config configures a Set. Zero values mean the documented defaults.
type Config struct {
	// Static are the sites always admitted (--sites). Any among them opens
	// the set.
	Static []string
	// Max bounds, in open mode, the sites of the shared Redis set: a new
	// site is admitted only while the set holds fewer (default 1000). The
	// check and the add are one script, so the bound holds fleet-wide.
	// Sites an admin adds count in the set but are never refused.
	Max int
	// NewPerMinute and Burst bound, in open mode, how fast this node admits
	// new sites (defaults 60 a minute, bursts of 20); they are per node.
	NewPerMinute float64
	Burst        int
	// Redis holds the shared set under Key. Required.
	Redis redis.UniversalClient
	Key   string
	// Refresh is how often Run reloads the shared set (default 2s): a site
	// added on another node is admitted here at most that much later.
	Refresh time.Duration
	// File, when set, keeps the shared set across restarts of a Redis that
	// keeps nothing (the embedded one): Load first adds the sites it lists
	// to the set, and every site added or admitted is appended to it.
	// Empty: the set lives in Redis only (a production Redis persists it).
	File       string
	Logger     *slog.Logger          // nil: no logging
	Registerer prometheus.Registerer // nil: metrics kept but not registered
}

func (c Config) withDefaults() Config {
	if c.Max <= 0 {
		c.Max = DefaultMax
	}
	if c.NewPerMinute <= 0 {
		c.NewPerMinute = DefaultNewPerMinute
	}
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	if c.Refresh <= 0 {
		c.Refresh = DefaultRefresh
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

//go:embed admit.lua
var admitLua string

var admitScript = redis.NewScript(admitLua)

// Set is the set of admitted sites. It is safe for concurrent use; Run
// owns its one goroutine.
type Set struct {
	cfg    Config
	open   bool
	static map[string]struct{}

	known  atomic.Pointer[map[string]struct{}] // static and shared; replaced whole
	shared atomic.Int64                        // size of the shared set when last seen
	loaded atomic.Int64                        // size of the shared set at the last full read

	mu     sync.Mutex // serializes changes of known, new-site admissions and File
	limit  *rate.Limiter
	m      *metrics
	seeded atomic.Bool // File's sites are in the shared set
}

// New returns the Set cfg describes; Load fills in the shared set.
func New(cfg Config) (*Set, error) {
	cfg = cfg.withDefaults()
	if cfg.Redis == nil || cfg.Key == "" {
		return nil, errors.New("sites: no Redis or key for the shared set")
	}
	s := &Set{cfg: cfg, static: map[string]struct{}{}, m: newMetrics(cfg.Registerer)}
	for _, site := range cfg.Static {
		if site == Any {
			s.open = true
			continue
		}
		if !event.IsName(site) {
			return nil, fmt.Errorf("sites: %q is not a site id ([a-z0-9_.-]{1,64})", site)
		}
		s.static[site] = struct{}{}
	}
	s.limit = rate.NewLimiter(rate.Limit(cfg.NewPerMinute/60), cfg.Burst)
	known := maps(s.static)
	s.known.Store(&known)
	s.m.known.Set(float64(len(known)))
	return s, nil
}

// Open reports whether any site may be admitted (within the caps).
func (s *Set) Open() bool { return s.open }

// Admit says why events of site are refused, or "" when they are
// admitted. A known site costs one map lookup. In open mode a new site
// costs one script call, within the node's rate of new sites; err is a
// failure of that call (the events should be retried, not refused).
func (s *Set) Admit(ctx context.Context, site string) (msg, reason string, err error) {
	if _, ok := (*s.known.Load())[site]; ok {
		return "", "", nil
	}
	if !s.open {
		return fmt.Sprintf("site: %s is not accepted by this server: it is not in --sites (PULSE_SITES); an admin can add it at run time with `pulse sites add %s` (POST /v1/admin/sites)",
			strconv.Quote(site), site), ReasonUnknown, nil
	}
	return s.admitNew(ctx, site)
}

// admitNew admits a site the node does not know yet, in open mode. site
// is a valid id: ingest validates events before asking.
func (s *Set) admitNew(ctx context.Context, site string) (msg, reason string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := (*s.known.Load())[site]; ok {
		return "", "", nil
	}
	full := func() (string, string, error) {
		return fmt.Sprintf("site: %s is not accepted by this server: it is new and the server already holds its maximum of %d sites (--sites-max); an admin can still add it with `pulse sites add %s`",
			strconv.Quote(site), s.cfg.Max, site), ReasonFull, nil
	}
	// Once the shared set is full, new sites are refused without a Redis
	// call or a token of the rate: the refresh notices if room is made.
	if s.shared.Load() >= int64(s.cfg.Max) {
		return full()
	}
	if !s.limit.Allow() {
		return fmt.Sprintf("site: %s is not accepted by this server yet: it is new and the server admits at most %g new sites a minute (--sites-new-rate); retry later",
			strconv.Quote(site), s.cfg.NewPerMinute), ReasonRate, nil
	}
	res, err := admitScript.Run(ctx, s.cfg.Redis, []string{s.cfg.Key}, site, s.cfg.Max).Int64Slice()
	if err != nil {
		return "", "", fmt.Errorf("admit new site %s: %w", site, err)
	}
	s.shared.Store(res[1])
	if res[0] == 0 {
		return full()
	}
	if res[0] == 2 {
		s.m.admitted.Inc()
		s.cfg.Logger.Info("new site admitted", "site", site, "sites", res[1], "max", s.cfg.Max)
		if err := s.appendFile(site); err != nil {
			// Admitted all the same: the shared set has it, and after a
			// restart that forgets it traffic admits it again.
			s.cfg.Logger.Warn("keep admitted site", "site", site, "err", err)
		}
	}
	s.addLocked(site)
	return "", "", nil
}

// addLocked adds sites to known; s.mu is held.
func (s *Set) addLocked(sites ...string) {
	cur := *s.known.Load()
	var next map[string]struct{}
	for _, site := range sites {
		if _, ok := cur[site]; ok {
			continue
		}
		if next == nil {
			next = maps(cur)
		}
		next[site] = struct{}{}
	}
	if next != nil {
		s.known.Store(&next)
		s.m.known.Set(float64(len(next)))
	}
}

// Add adds site to the shared set, whatever the cap: an admin's decision.
// added is false when the set already held it.
func (s *Set) Add(ctx context.Context, site string) (added bool, err error) {
	if !event.IsName(site) {
		return false, fmt.Errorf("%w: %q is not a site id ([a-z0-9_.-]{1,64})", ErrBadSite, site)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The file first: an admin whose add was answered must find the site
	// after a restart of a Redis that keeps nothing.
	if _, known := (*s.known.Load())[site]; !known {
		if err := s.appendFile(site); err != nil {
			return false, err
		}
	}
	n, err := s.cfg.Redis.SAdd(ctx, s.cfg.Key, site).Result()
	if err != nil {
		return false, fmt.Errorf("add site %s to %s: %w", site, s.cfg.Key, err)
	}
	s.addLocked(site)
	if n == 1 {
		s.shared.Add(1)
		s.m.added.Inc()
		s.cfg.Logger.Info("site added by an admin", "site", site)
	}
	return n == 1, nil
}

// ErrBadSite is returned by Add for a string that is not a site id.
var ErrBadSite = errors.New("sites: bad site id")

// List returns the static sites and those of the shared set, sorted.
func (s *Set) List(ctx context.Context) (static, shared []string, err error) {
	shared, err = s.cfg.Redis.SMembers(ctx, s.cfg.Key).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("read sites %s: %w", s.cfg.Key, err)
	}
	for site := range s.static {
		static = append(static, site)
	}
	slices.Sort(static)
	slices.Sort(shared)
	return static, shared, nil
}

// Load reads the shared set. The size is read first: the set only grows
// (sites are added, never removed by Pulse), so an unchanged size means
// nothing to read.
func (s *Set) Load(ctx context.Context) error {
	if !s.seeded.Load() {
		if err := s.seed(ctx); err != nil {
			return err
		}
		s.seeded.Store(true)
	}
	n, err := s.cfg.Redis.SCard(ctx, s.cfg.Key).Result()
	if err != nil {
		return fmt.Errorf("read size of sites %s: %w", s.cfg.Key, err)
	}
	s.shared.Store(n)
	if n == s.loaded.Load() {
		return nil
	}
	members, err := s.cfg.Redis.SMembers(ctx, s.cfg.Key).Result()
	if err != nil {
		return fmt.Errorf("read sites %s: %w", s.cfg.Key, err)
	}
	s.mu.Lock()
	s.addLocked(members...)
	s.mu.Unlock()
	s.loaded.Store(int64(len(members)))
	s.shared.Store(int64(len(members)))
	return nil
}

// Run reloads the shared set every Refresh until ctx is done. A failed
// reload is logged and retried at the next tick: the sites known so far
// stay admitted.
func (s *Set) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.Load(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("reload sites", "err", err)
		}
	}
}

// seed adds the sites of File to the shared set.
func (s *Set) seed(ctx context.Context) error {
	if s.cfg.File == "" {
		return nil
	}
	b, err := os.ReadFile(s.cfg.File)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read sites file: %w", err)
	}
	var kept []any
	for i, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		if !event.IsName(line) {
			// What a crash may leave of an append (zeros, on some file
			// systems) is the one way to get here.
			s.cfg.Logger.Warn("sites file: skipping a line that is not a site id", "file", s.cfg.File, "line", i+1)
			continue
		}
		kept = append(kept, line)
	}
	if len(kept) == 0 {
		return nil
	}
	if err := s.cfg.Redis.SAdd(ctx, s.cfg.Key, kept...).Err(); err != nil {
		return fmt.Errorf("restore %d sites of %s into %s: %w", len(kept), s.cfg.File, s.cfg.Key, err)
	}
	return nil
}

// appendFile appends site to File, durably; s.mu is held.
func (s *Set) appendFile(site string) error {
	if s.cfg.File == "" {
		return nil
	}
	f, err := os.OpenFile(s.cfg.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("keep site %s: %w", site, err)
	}
	_, err = f.WriteString(site + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("keep site %s in %s: %w", site, s.cfg.File, err)
	}
	return nil
}

func maps(m map[string]struct{}) map[string]struct{} {
	out := make(map[string]struct{}, len(m)+1)
	for k := range m {
		out[k] = struct{}{}
	}
	return out
}
