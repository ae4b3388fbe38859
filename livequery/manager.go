// Package livequery runs live Stats API queries: the same body as POST
// /v1/stats, answered once as a snapshot and then as deltas of the rows
// whose values changed, as new fact rows arrive (docs/api.md, "Live
// queries").
//
// Identical queries share one computation: an open stats.Execution that
// is fed only the rows it has not seen, per hour of its range, when the
// apply script signals that a site's rows grew (one Redis subscription
// per site, whatever the number of queries; only the hours the signal
// names are read, and every hour of the range on the Rerange tick). A range relative to now
// ("day", "30m", ...) is resolved again on a timer and recomputed when it
// moved. Each computation keeps a bounded history of its deltas, so a
// client that reconnects resumes from the seq it had.
package livequery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/stats"
)

// Engine reads the fact rows of one namespace: *statsquery.Engine.
type Engine interface {
	// Prepare checks q against what the rows hold at now (retention,
	// event-level only) and resolves an "all" range.
	Prepare(ctx context.Context, q stats.Query, now time.Time) (stats.Query, error)
	// HourSegments returns the rows of each hour (an empty view when
	// none); between calls a view only grows unless its string began
	// again.
	HourSegments(ctx context.Context, site string, hours []int64) ([]stats.SegmentView, error)
}

// Namespace is what live queries read: an engine, and the pub/sub channel
// on which the apply script announces new rows of a site
// (redisagg.Store.RowChannelOf).
type Namespace struct {
	Engine  Engine
	Channel func(site string) string
}

// Config configures a Manager. Zero values mean the documented defaults.
type Config struct {
	// Redis carries the row signals (SUBSCRIBE). Required.
	Redis redis.UniversalClient
	// Current returns the namespace served now. Required.
	Current func() Namespace
	// Debounce is the shortest time between two recomputations of one
	// query on row signals (100ms): a burst of signals costs one.
	Debounce time.Duration
	// Rerange is how often a query resolves a relative range again and
	// reads new rows even without a signal, so a signal lost in a
	// reconnect is caught up (5s).
	Rerange time.Duration
	// History is the number of deltas each computation keeps for resumes
	// (256), HistoryBytes the bytes of their bodies (1 MiB).
	History      int
	HistoryBytes int
	// MaxComputations caps the distinct live queries of this node (256):
	// each holds its execution, about 1 MiB per 100,000 rows of its range
	// for a query of two dimensions (TestLiveCosts).
	MaxComputations int
	// Now is the clock that resolves ranges; nil means time.Now.
	Now func() time.Time
	// Logger: nil means no logging.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Debounce <= 0 {
		c.Debounce = 100 * time.Millisecond
	}
	if c.Rerange <= 0 {
		c.Rerange = 5 * time.Second
	}
	if c.History <= 0 {
		c.History = 256
	}
	if c.HistoryBytes <= 0 {
		c.HistoryBytes = 1 << 20
	}
	if c.MaxComputations <= 0 {
		c.MaxComputations = 256
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Errors of Subscribe besides the query's *stats.Error.
var (
	ErrNotRunning = errors.New("livequery: not running")
	ErrLimit      = errors.New("livequery: too many distinct live queries on this node")
)

// redisTimeout bounds one SUBSCRIBE or UNSUBSCRIBE.
const redisTimeout = 5 * time.Second

// Manager runs the live queries of one node. Run must be running for
// Subscribe to succeed. Safe for concurrent use.
type Manager struct {
	cfg Config

	// lastSeq is the highest seq any computation has used: a new
	// computation starts above it, so a since from an ended computation
	// of the same query is never taken for one of the new one's.
	lastSeq atomic.Int64

	// counting is held by the one count of a whole range running: counts
	// cost in rows, and a node holds up to MaxComputations queries whose
	// ranges may move every Rerange, so they take one core at most; more
	// queries than that core serves wait their turn, and lag.
	counting chan struct{}

	mu      sync.Mutex
	ctx     context.Context // Run's; nil before Run
	stopped bool
	ps      *redis.PubSub
	comps   map[string]*computation // by key
	sites   map[string]*siteWatch
	chans   map[string]string // channel -> site
	wg      sync.WaitGroup    // the computations' loops
}

// siteWatch is one site with live queries: the channel subscribed for it
// and its computations.
type siteWatch struct {
	channel string
	comps   map[*computation]struct{}
}

// New returns a Manager.
func New(cfg Config) *Manager {
	return &Manager{cfg: cfg.withDefaults(), counting: make(chan struct{}, 1), comps: map[string]*computation{},
		sites: map[string]*siteWatch{}, chans: map[string]string{}}
}

// Run receives the row signals and owns every computation until ctx
// ends; then it stops them and waits for them.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.ctx != nil {
		m.mu.Unlock()
		return errors.New("livequery: Run called twice")
	}
	m.ctx = ctx
	m.ps = m.cfg.Redis.Subscribe(ctx)
	m.mu.Unlock()

	msgs := m.ps.Channel()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case msg, ok := <-msgs:
			if !ok {
				done = true
				break
			}
			m.signal(msg.Channel, grownHours(msg.Payload))
		}
	}

	m.mu.Lock()
	m.stopped = true
	for _, c := range m.comps {
		c.cancel()
	}
	m.mu.Unlock()
	m.wg.Wait()
	if err := m.ps.Close(); err != nil {
		return fmt.Errorf("close row signal subscription: %w", err)
	}
	return nil
}

// signal wakes the computations of the site whose channel announced rows
// in hours (nil: unknown hours).
func (m *Manager) signal(channel string, hours []int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.sites[m.chans[channel]]
	if w == nil {
		return
	}
	for c := range w.comps {
		c.grew(hours)
		poke(c.signal)
	}
}

// grownHours reads the hours of a row signal, "HOUR:LENGTH,HOUR:LENGTH"
// (redisagg/apply.lua, applyRows); nil when it is not of that form.
func grownHours(payload string) []int64 {
	var out []int64
	for part := range strings.SplitSeq(payload, ",") {
		h, _, ok := strings.Cut(part, ":")
		n, err := strconv.ParseInt(h, 10, 64)
		if !ok || err != nil {
			return nil
		}
		out = append(out, n)
	}
	return out
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Switched moves every live query to the namespace Current returns now:
// the row channels are subscribed again, and each computation is rebuilt
// from the new namespace's rows and sends its subscribers a snapshot with
// "reset":true.
func (m *Manager) Switched() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil || m.stopped {
		return
	}
	ns := m.cfg.Current()
	for site, w := range m.sites {
		ch := ns.Channel(site)
		if ch == w.channel {
			continue
		}
		rctx, cancel := context.WithTimeout(m.ctx, redisTimeout)
		if err := m.ps.Unsubscribe(rctx, w.channel); err != nil {
			m.cfg.Logger.Warn("livequery: switch: unsubscribe", "channel", w.channel, "err", err)
		}
		if err := m.ps.Subscribe(rctx, ch); err != nil {
			m.cfg.Logger.Warn("livequery: switch: subscribe", "channel", ch, "err", err)
		}
		cancel()
		delete(m.chans, w.channel)
		m.chans[ch], w.channel = site, ch
	}
	for _, c := range m.comps {
		poke(c.reset)
	}
}

// Computations is the number of distinct live queries running.
func (m *Manager) Computations() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.comps)
}

// Subscribe parses body (a POST /v1/stats body) and attaches send to the
// computation of that query, made if none runs. send gets every message
// of this subscriber until stop returns: op is "snapshot", "delta" or
// "error", body the message's fields after op and id, from `"seq":` (or
// `"from":`, `"code":`) to the closing brace. It is called with the
// computation's lock held and must not block.
//
// With since < 0 the first message is a snapshot (with "reset":true when
// reset). Otherwise the deltas after since are replayed while the history
// holds them (none when since is the current seq), else a snapshot with
// "reset":true comes. A query the Stats API refuses fails with its
// *stats.Error.
func (m *Manager) Subscribe(ctx context.Context, body []byte, since int64, reset bool, send func(op string, body []byte)) (stop func(), err error) {
	now := m.cfg.Now()
	q, err := stats.Parse(body, now)
	if err != nil {
		return nil, err
	}
	eng := m.current().Engine
	if q, err = eng.Prepare(ctx, q, now); err != nil {
		return nil, err
	}
	key, relative, err := keyOf(q, body)
	if err != nil {
		return nil, err
	}
	c, err := m.acquire(ctx, key, q.Site, body, relative)
	if err != nil {
		return nil, err
	}
	s := &subscriber{send: send}
	if err := c.attach(ctx, s, since, reset); err != nil {
		m.release(c)
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			c.detach(s)
			m.release(c)
		})
	}, nil
}

func (m *Manager) current() Namespace { return m.cfg.Current() }

// acquire returns the computation of key with one more reference, made
// (and its site watched) if none runs.
func (m *Manager) acquire(ctx context.Context, key, site string, body []byte, relative bool) (*computation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil || m.stopped {
		return nil, ErrNotRunning
	}
	if c := m.comps[key]; c != nil {
		c.refs++
		return c, nil
	}
	if len(m.comps) >= m.cfg.MaxComputations {
		return nil, ErrLimit
	}
	w := m.sites[site]
	if w == nil {
		ch := m.current().Channel(site)
		rctx, cancel := context.WithTimeout(ctx, redisTimeout)
		err := m.ps.Subscribe(rctx, ch)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("subscribe %s: %w", ch, err)
		}
		w = &siteWatch{channel: ch, comps: map[*computation]struct{}{}}
		m.sites[site] = w
		m.chans[ch] = site
	}
	cctx, cancel := context.WithCancel(m.ctx)
	c := newComputation(m, key, site, body, relative, cancel)
	c.refs = 1
	m.comps[key] = c
	w.comps[c] = struct{}{}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		c.run(cctx)
	}()
	return c, nil
}

// release drops one reference of c; the last stops it, and the last
// computation of a site unsubscribes the site's channel.
func (m *Manager) release(c *computation) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c.refs--
	if c.refs > 0 {
		return
	}
	c.cancel()
	if m.comps[c.key] == c {
		delete(m.comps, c.key)
	}
	w := m.sites[c.site]
	if w == nil {
		return
	}
	delete(w.comps, c)
	if len(w.comps) > 0 {
		return
	}
	delete(m.sites, c.site)
	delete(m.chans, w.channel)
	if m.stopped {
		return
	}
	rctx, cancel := context.WithTimeout(m.ctx, redisTimeout)
	defer cancel()
	if err := m.ps.Unsubscribe(rctx, w.channel); err != nil {
		m.cfg.Logger.Warn("livequery: unsubscribe", "channel", w.channel, "err", err)
	}
}

// nextBase is the seq of a new computation's first snapshot: above every
// seq used before, and above the clock in ms x 1024, so a computation made
// after a restart of the node starts above the old one's too while
// deltas come at most a few per ms (they are debounced); it stays below
// 2^53, the integers a JavaScript client reads exactly, until the year 2250.
func (m *Manager) nextBase() int64 {
	for {
		last := m.lastSeq.Load()
		base := max(m.cfg.Now().UnixMilli()<<10, last+1)
		if m.lastSeq.CompareAndSwap(last, base) {
			return base
		}
	}
}

// used records that seq was handed out.
func (m *Manager) used(seq int64) {
	for {
		last := m.lastSeq.Load()
		if seq <= last || m.lastSeq.CompareAndSwap(last, seq) {
			return
		}
	}
}

// keyOf is the key that identical queries share: the site and the
// resolved query, with a relative date_range in the form it was asked
// ("day" asked at two instants is one query). relative says whether the
// range must be resolved again as time passes.
func keyOf(q stats.Query, body []byte) (key string, relative bool, err error) {
	var f struct {
		DateRange json.RawMessage `json:"date_range"`
	}
	if err := json.Unmarshal(body, &f); err != nil {
		return "", false, fmt.Errorf("read date_range: %w", err)
	}
	r := q.Resolved()
	var asked string
	if json.Unmarshal(f.DateRange, &asked) == nil {
		relative = true
		r.DateRange = asked
	}
	b, err := json.Marshal(r)
	if err != nil {
		return "", false, fmt.Errorf("key of the query: %w", err)
	}
	return q.Site + "\x00" + string(b), relative, nil
}
