package livequery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pulsehq/pulse/stats"
	"github.com/pulsehq/pulse/statsquery"
)

// subscriber is one client of a computation.
type subscriber struct {
	send func(op string, body []byte)
}

// delta is one delta of the history: its seq and body.
type delta struct {
	seq  int64
	body []byte
}

// computation is one live query shared by its subscribers. Its loop
// goroutine recomputes it; Subscribe builds it the first time.
type computation struct {
	m        *Manager
	key      string
	site     string
	body     []byte
	relative bool
	cancel   context.CancelFunc
	signal   chan struct{} // rows grew
	reset    chan struct{} // the namespace changed
	refs     int           // under m.mu

	grownMu  sync.Mutex
	grownIn  map[int64]struct{} // hours signalled since the last refresh
	grownAll bool               // a signal named no hours: read them all

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	built  bool
	failed bool // the rows passed stats.MaxGroups: subscribers were told; counted again on the tick
	eng    Engine
	q      stats.Query
	x      *stats.Execution
	// visits is the answer of a query that needs visits, which is counted
	// whole each time (a new event can join visits or split one), x nil.
	visits *stats.Answer
	fed    map[int64]int // rows counted per hour
	seq    int64
	rows   map[string][]byte // label key -> metrics JSON, of the last answer
	order  []string          // the label keys of the last answer, in its order
	labels map[string][]string
	meta   []byte
	query  []byte
	snap   []byte // the snapshot of seq, without its closing brace; nil: not encoded yet
	hist   []delta
	// histBytes is the bytes of hist's bodies.
	histBytes int

	counted time.Time     // when the last count of the whole range ended
	cost    time.Duration // what it took
}

func newComputation(m *Manager, key, site string, body []byte, relative bool, cancel context.CancelFunc) *computation {
	return &computation{m: m, key: key, site: site, body: body, relative: relative, cancel: cancel,
		signal: make(chan struct{}, 1), reset: make(chan struct{}, 1), subs: map[*subscriber]struct{}{}}
}

// grew notes the hours a row signal named (nil: unknown), for the next
// refresh to read only those.
func (c *computation) grew(hours []int64) {
	c.grownMu.Lock()
	defer c.grownMu.Unlock()
	if hours == nil {
		c.grownAll = true
		return
	}
	if c.grownIn == nil {
		c.grownIn = map[int64]struct{}{}
	}
	for _, h := range hours {
		c.grownIn[h] = struct{}{}
	}
}

// takeGrown returns the hours signalled since the last call, nil when
// every hour must be read.
func (c *computation) takeGrown() map[int64]struct{} {
	c.grownMu.Lock()
	defer c.grownMu.Unlock()
	g, all := c.grownIn, c.grownAll
	c.grownIn, c.grownAll = nil, false
	if all {
		return nil
	}
	if g == nil {
		g = map[int64]struct{}{}
	}
	return g
}

// attach adds s, building the computation if it is not yet, and sends s
// its start: a snapshot, or the deltas after since.
func (c *computation) attach(ctx context.Context, s *subscriber, since int64, reset bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.built {
		if err := c.build(ctx, c.m.current().Engine, c.m.cfg.Now()); err != nil {
			return err
		}
		c.seq = c.m.nextBase()
		c.built = true
	}
	c.subs[s] = struct{}{}
	switch {
	case since < 0:
		s.send("snapshot", c.snapshot(reset))
	case since == c.seq:
	case len(c.hist) > 0 && c.hist[0].seq <= since+1 && since < c.seq:
		for _, d := range c.hist {
			if d.seq > since {
				s.send("delta", d.body)
			}
		}
	default:
		s.send("snapshot", c.snapshot(true))
	}
	return nil
}

func (c *computation) detach(s *subscriber) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.subs, s)
}

// run recomputes on row signals (at most once per Debounce), on the
// Rerange tick and on namespace switches, until ctx ends.
func (c *computation) run(ctx context.Context) {
	cfg := c.m.cfg
	tick := time.NewTicker(cfg.Rerange)
	defer tick.Stop()
	wait := time.NewTimer(time.Hour)
	wait.Stop() // armed by the first signal inside Debounce
	defer wait.Stop()
	waiting := false
	var last time.Time
	refresh := func(tick bool) {
		if again := c.refresh(ctx, tick); again > 0 && !waiting {
			wait.Reset(again)
			waiting = true
		}
		last = time.Now()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.signal:
			if waiting {
				continue
			}
			if d := cfg.Debounce - time.Since(last); d > 0 {
				wait.Reset(d)
				waiting = true
				continue
			}
			refresh(false)
		case <-wait.C:
			waiting = false
			refresh(false)
		case <-tick.C:
			refresh(true)
		case <-c.reset:
			refresh(true)
		}
	}
}

// refresh brings the answer up to date and sends the change: the new
// rows of each hour, or a rebuild when the range moved, a row string
// began again or the namespace changed.
//
// A range that ends at now ("realtime", "24h") moves at every refresh,
// and a moved range is counted anew, since rows cannot be taken out of
// an execution. On the tick it always is; on a row signal only while
// recounting costs at most a tenth of the time since the last count, so
// a short range follows its rows within Debounce and a long one costs a
// bounded share of a core (its newest rows, past the end it was resolved
// with, then wait for the tick). A query that needs visits is counted
// anew at every refresh, under the same bound: until then, refresh
// returns when to come back.
func (c *computation) refresh(ctx context.Context, tick bool) (again time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	grown := c.takeGrown()
	if tick {
		grown = nil // every hour: a signal may have been lost
	}
	if !c.built || c.failed && !tick {
		return 0
	}
	now := c.m.cfg.Now()
	eng := c.m.current().Engine
	rctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	if eng != c.eng {
		// Another namespace: its rows are not the ones counted.
		if err := c.build(rctx, eng, now); err != nil {
			c.fail(err)
			return 0
		}
		c.hist, c.histBytes = nil, 0
		c.advance()
		for s := range c.subs {
			s.send("snapshot", c.snapshot(true))
		}
		return 0
	}
	q := c.q
	if c.relative {
		nq, err := stats.Parse(c.body, now)
		if err == nil {
			nq, err = eng.Prepare(rctx, nq, now)
		}
		if err != nil {
			c.fail(err)
			return 0
		}
		q = nq
	}
	visits := q.NeedsVisits()
	moved := q.Range != c.q.Range || visits
	if wait := max(c.m.cfg.Debounce, 10*c.cost) - time.Since(c.counted); moved && !tick && wait > 0 {
		if visits {
			return wait
		}
		moved = false
	}
	var err error
	if moved || c.failed {
		err = c.rebuild(rctx, eng, q, now)
	} else {
		err = c.feed(rctx, now, grown)
	}
	if err != nil {
		c.fail(err)
	}
	return 0
}

// fail reports err: a query error (too many rows) to the subscribers once,
// a store error to the log (the next refresh tries again).
func (c *computation) fail(err error) {
	var se *stats.Error
	if !errors.As(err, &se) {
		c.m.cfg.Logger.Warn("livequery: refresh", "site", c.site, "err", err)
		c.grew(nil) // the hours taken for this refresh: the next reads them all
		return
	}
	if c.failed {
		return
	}
	c.failed = true
	b, _ := json.Marshal(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Part    string `json:"part,omitempty"`
	}{"bad_query", se.Error(), se.Part})
	body := b[1:]
	for s := range c.subs {
		s.send("error", body)
	}
}

// rebuild counts every row of q's range again and sends the difference.
func (c *computation) rebuild(ctx context.Context, eng Engine, q stats.Query, now time.Time) error {
	prev := c.q
	c.q = q
	if err := c.count(ctx, eng, now); err != nil {
		c.q = prev
		return err
	}
	c.failed = false
	return c.publish()
}

// feed counts the rows that arrived since the last refresh in the hours
// of grown (nil: every hour of the range).
func (c *computation) feed(ctx context.Context, now time.Time, grown map[int64]struct{}) error {
	hours := statsquery.Hours(c.q.Range.From, c.q.Range.To, now)
	if grown != nil {
		hours = slices.DeleteFunc(hours, func(h int64) bool { _, ok := grown[h]; return !ok })
		if len(hours) == 0 {
			return nil
		}
	}
	views, err := c.eng.HourSegments(ctx, c.site, hours)
	if err != nil {
		return err
	}
	for i, h := range hours {
		if views[i].Len() < c.fed[h] {
			// The hour's string expired and began again: count anew.
			return c.rebuild(ctx, c.eng, c.q, now)
		}
	}
	if err := addRows(c.x, hours, views, c.fed); err != nil {
		return err
	}
	return c.publish()
}

// addRows adds to x the rows of each hour past the fed[h] it has counted,
// and records how many it has now.
func addRows(x *stats.Execution, hours []int64, views []stats.SegmentView, fed map[int64]int) error {
	var buf []stats.Row
	for i, h := range hours {
		n := views[i].Len()
		for from := fed[h]; from < n; from += addChunk {
			buf = views[i].Rows(from, min(from+addChunk, n), buf[:0])
			for j := range buf {
				if err := x.Add(&buf[j]); err != nil {
					return err
				}
			}
		}
		if n > 0 {
			fed[h] = n
		}
	}
	return nil
}

// addChunk is how many rows addRows rebuilds from columns at a time.
const addChunk = 4096

// build counts q's rows from eng as if new (the query resolved at now
// when relative) and takes the answer as the current one.
func (c *computation) build(ctx context.Context, eng Engine, now time.Time) error {
	q, err := stats.Parse(c.body, now)
	if err != nil {
		return err
	}
	if q, err = eng.Prepare(ctx, q, now); err != nil {
		return err
	}
	c.q = q
	if err := c.count(ctx, eng, now); err != nil {
		return err
	}
	a, err := c.answer()
	if err != nil {
		return err
	}
	c.take(a)
	c.failed = false
	return nil
}

// count makes a new execution of c.q over every row of its range.
func (c *computation) count(ctx context.Context, eng Engine, now time.Time) error {
	select {
	case c.m.counting <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait to count %s: %w", c.site, ctx.Err())
	}
	defer func() { <-c.m.counting }()
	start := time.Now()
	if c.q.NeedsVisits() {
		a, err := stats.ExecuteVisits(c.q, now, func(hours []int64) ([]stats.SegmentView, error) {
			return eng.HourSegments(ctx, c.site, hours)
		})
		if err != nil {
			return err
		}
		c.eng, c.x, c.visits, c.fed = eng, nil, &a, nil
		c.counted = time.Now()
		c.cost = c.counted.Sub(start)
		return nil
	}
	x, err := stats.NewExecution(c.q)
	if err != nil {
		return err
	}
	hours := statsquery.Hours(c.q.Range.From, c.q.Range.To, now)
	views, err := eng.HourSegments(ctx, c.site, hours)
	if err != nil {
		return err
	}
	fed := make(map[int64]int, len(hours))
	if err := addRows(x, hours, views, fed); err != nil {
		return err
	}
	c.eng, c.x, c.visits, c.fed = eng, x, nil, fed
	c.counted = time.Now()
	c.cost = c.counted.Sub(start)
	return nil
}

// publish answers again and sends the rows that changed, if any, as the
// next delta to every subscriber.
func (c *computation) publish() error {
	a, err := c.answer()
	if err != nil {
		return err
	}
	oldRows, oldOrder, oldLabels, oldMeta, oldQuery := c.rows, c.order, c.labels, c.meta, c.query
	c.take(a)
	var changed []stats.ResultRow
	for i, k := range c.order {
		if v, ok := oldRows[k]; !ok || string(v) != string(c.rows[k]) {
			changed = append(changed, a.Results[i])
		}
	}
	var removed [][]string
	for _, k := range oldOrder {
		if _, ok := c.rows[k]; !ok {
			removed = append(removed, oldLabels[k])
		}
	}
	metaChanged, queryChanged := string(oldMeta) != string(c.meta), string(oldQuery) != string(c.query)
	if len(changed) == 0 && len(removed) == 0 && !metaChanged && !queryChanged {
		return nil
	}
	c.advance()
	body := c.encodeDelta(changed, removed, metaChanged, queryChanged)
	c.remember(delta{seq: c.seq, body: body})
	for s := range c.subs {
		s.send("delta", body)
	}
	return nil
}

// answer is the answer to the rows counted so far.
func (c *computation) answer() (stats.Answer, error) {
	if c.visits != nil {
		return *c.visits, nil
	}
	return c.x.Answer()
}

// remember adds d to the history, dropping the oldest deltas past
// Config.History deltas or HistoryBytes bytes.
func (c *computation) remember(d delta) {
	c.hist = append(c.hist, d)
	c.histBytes += len(d.body)
	n := 0
	for n < len(c.hist) && (len(c.hist)-n > c.m.cfg.History || c.histBytes > c.m.cfg.HistoryBytes) {
		c.histBytes -= len(c.hist[n].body)
		n++
	}
	if n > 0 {
		c.hist = append(c.hist[:0:0], c.hist[n:]...)
	}
}

// advance moves to the next seq.
func (c *computation) advance() {
	c.seq++
	c.snap = nil
	c.m.used(c.seq)
}

// take makes a the current answer.
func (c *computation) take(a stats.Answer) {
	c.rows = make(map[string][]byte, len(a.Results))
	c.order = make([]string, len(a.Results))
	c.labels = make(map[string][]string, len(a.Results))
	for i, r := range a.Results {
		k := labelKey(r.Dimensions)
		m, _ := json.Marshal(r.Metrics)
		c.rows[k], c.order[i], c.labels[k] = m, k, r.Dimensions
	}
	c.meta, _ = json.Marshal(a.Meta)
	c.query, _ = json.Marshal(a.Query)
	c.snap = nil
}

// labelKey is the JSON of a row's labels: what rows are told apart by.
func labelKey(dims []string) string {
	if dims == nil {
		dims = []string{}
	}
	b, _ := json.Marshal(dims)
	return string(b)
}

// snapshot is the body of a snapshot of the current answer.
func (c *computation) snapshot(reset bool) []byte {
	if c.snap == nil {
		b := make([]byte, 0, 64+len(c.meta)+len(c.query)+len(c.order)*48)
		b = append(b, `"seq":`...)
		b = strconv.AppendInt(b, c.seq, 10)
		b = append(b, `,"results":[`...)
		for i, k := range c.order {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendRow(b, k, c.rows[k])
		}
		b = append(b, `],"meta":`...)
		b = append(b, c.meta...)
		b = append(b, `,"query":`...)
		c.snap = append(b, c.query...)
	}
	out := make([]byte, 0, len(c.snap)+16)
	out = append(out, c.snap...)
	if reset {
		out = append(out, `,"reset":true`...)
	}
	return append(out, '}')
}

func (c *computation) encodeDelta(changed []stats.ResultRow, removed [][]string, meta, query bool) []byte {
	b := make([]byte, 0, 64+len(changed)*48)
	b = append(b, `"from":`...)
	b = strconv.AppendInt(b, c.seq, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, c.seq, 10)
	b = append(b, `,"results":[`...)
	for i, r := range changed {
		if i > 0 {
			b = append(b, ',')
		}
		k := labelKey(r.Dimensions)
		b = appendRow(b, k, c.rows[k])
	}
	b = append(b, `],"removed":`...)
	if removed == nil {
		removed = [][]string{}
	}
	rb, _ := json.Marshal(removed)
	b = append(b, rb...)
	if meta {
		b = append(append(b, `,"meta":`...), c.meta...)
	}
	if query {
		b = append(append(b, `,"query":`...), c.query...)
	}
	return append(b, '}')
}

// appendRow writes one result row from its label key (the JSON of its
// labels) and the JSON of its metrics.
func appendRow(b []byte, key string, metrics []byte) []byte {
	b = append(b, `{"dimensions":`...)
	b = append(b, key...)
	b = append(b, `,"metrics":`...)
	b = append(b, metrics...)
	return append(b, '}')
}
