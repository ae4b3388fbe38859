package livequery

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/factrow"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/stats"
	"github.com/pulsehq/pulse/statsquery"
)

// env is a real redis-server, a store that applies commits with fact
// rows, the engine over it and a running Manager, all on one clock.
type env struct {
	t     *testing.T
	rdb   *redis.Client
	cat   *metric.Catalog
	store *redisagg.Store
	eng   *statsquery.Engine
	m     *Manager
	ns    atomic.Pointer[Namespace]
	now   atomic.Int64 // ms
	seq   int
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, rdb: rdb, cat: cat, store: redisagg.New(rdb, cat, redisagg.Config{})}
	// Near the real time: Redis expires row strings by its own clock.
	e.now.Store(time.Now().Truncate(time.Minute).UnixMilli())
	clock := func() time.Time { return time.UnixMilli(e.now.Load()) }
	e.eng = statsquery.New(e.store, statsquery.Config{Now: clock})
	cfg.Redis = rdb
	cfg.Now = clock
	e.ns.Store(&Namespace{Engine: e.eng, Channel: e.store.RowChannelOf})
	cfg.Current = func() Namespace { return *e.ns.Load() }
	e.m = New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	for {
		e.m.mu.Lock()
		running := e.m.ctx != nil
		e.m.mu.Unlock()
		if running {
			return e
		}
		time.Sleep(time.Millisecond)
	}
}

// apply commits rows (as the aggregator does: appended per hour) through
// the apply script, which publishes the row signal.
func (e *env) apply(rows ...stats.Row) {
	e.t.Helper()
	u := metric.NewUpdate()
	u.Rows = map[metric.RowKey][]byte{}
	for i := range rows {
		h := factrow.HourOf(rows[i].TS)
		k := metric.RowKey{Site: "shop", Hour: h}
		u.Rows[k] = factrow.Append(u.Rows[k], &rows[i], h)
	}
	e.seq++
	s := strconv.Itoa(e.seq)
	c := &metric.Commit{Shard: "shard-000001", First: s, Last: s, Update: u, Pos: metric.Position{Seq: s, DedupFrom: s}}
	if err := e.store.Apply(context.Background(), c); err != nil {
		e.t.Fatalf("apply: %v", err)
	}
}

// row is an event minutes before the clock.
func (e *env) row(minAgo int, goal, page, device string, visitor uint64) stats.Row {
	return stats.Row{TS: e.now.Load() - int64(minAgo)*60_000, Goal: goal, Page: page, Hostname: "shop.test",
		Device: device, Visitor: visitor, Props: []stats.RowProp{{Key: "price", Num: float64(visitor), IsNum: true}}}
}

// client is one subscriber: it folds what it gets as a client does.
type client struct {
	mu     sync.Mutex
	rows   map[string]string // labels JSON -> metrics JSON
	meta   string
	seq    int64
	snaps  int
	resets int
	deltas int
	gaps   []string
}

func (c *client) send(op string, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var m struct {
		From, Seq int64
		Results   []struct{ Dimensions, Metrics json.RawMessage }
		Removed   []json.RawMessage
		Meta      json.RawMessage
		Reset     bool
	}
	if err := json.Unmarshal(append([]byte("{"), body...), &m); err != nil {
		c.gaps = append(c.gaps, fmt.Sprintf("%s body %s: %v", op, body, err))
		return
	}
	switch op {
	case "snapshot":
		c.rows, c.snaps = map[string]string{}, c.snaps+1
		if m.Reset {
			c.resets++
		}
	case "delta":
		c.deltas++
		if c.rows == nil {
			c.rows = map[string]string{} // resumed: the snapshot came on another subscription
		}
		if m.From != c.seq+1 || m.Seq < m.From {
			c.gaps = append(c.gaps, fmt.Sprintf("delta from %d seq %d after seq %d", m.From, m.Seq, c.seq))
		}
		for _, r := range m.Removed {
			delete(c.rows, compact(r))
		}
	default:
		c.gaps = append(c.gaps, op+": "+string(body))
		return
	}
	for _, r := range m.Results {
		c.rows[compact(r.Dimensions)] = compact(r.Metrics)
	}
	if m.Meta != nil {
		c.meta = compact(m.Meta)
	}
	c.seq = m.Seq
}

func compact(b json.RawMessage) string {
	var v any
	_ = json.Unmarshal(b, &v)
	out, _ := json.Marshal(v)
	return string(out)
}

// folded is the client's answer as REST would give it: rows by labels, meta.
func (c *client) folded() (map[string]string, string, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.rows), c.meta, c.gaps
}

// rest is the engine's answer to body now, in the client's form.
func (e *env) rest(body string) (map[string]string, string) {
	e.t.Helper()
	q, err := stats.Parse([]byte(body), time.UnixMilli(e.now.Load()))
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := e.eng.Answer(context.Background(), q)
	if err != nil {
		e.t.Fatal(err)
	}
	rows := map[string]string{}
	for _, r := range a.Results {
		d, _ := json.Marshal(r.Dimensions)
		m, _ := json.Marshal(r.Metrics)
		rows[compact(d)] = compact(m)
	}
	meta, _ := json.Marshal(a.Meta)
	return rows, compact(meta)
}

// settle waits until c's fold equals the REST answer of body, and fails
// the test if it does not within 10 s.
func (e *env) settle(c *client, body string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		want, wantMeta := e.rest(body)
		got, meta, gaps := c.folded()
		if len(gaps) > 0 {
			e.t.Fatalf("protocol: %v", gaps)
		}
		if maps.Equal(got, want) && meta == wantMeta {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("fold of snapshot and deltas\n got %v %s\nwant %v %s", got, meta, want, wantMeta)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) subscribe(body string, since int64) (*client, func()) {
	e.t.Helper()
	c := &client{seq: since}
	stop, err := e.m.Subscribe(context.Background(), []byte(body), since, false, c.send)
	if err != nil {
		e.t.Fatalf("subscribe %s: %v", body, err)
	}
	e.t.Cleanup(stop)
	return c, stop
}

// explicit is a body over the last two hours (and the next), not relative.
func (e *env) explicit(extra string) string {
	now := time.UnixMilli(e.now.Load()).UTC()
	return fmt.Sprintf(`{"site_id":"shop","metrics":["events","visitors","sum:props.price"],"date_range":[%q,%q]%s}`,
		now.Add(-2*time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339), extra)
}

func TestLiveFold(t *testing.T) {
	tests := []struct{ name, extra string }{
		{"filter and two dimensions",
			`,"dimensions":["event:page","visit:device"],"filters":[["is_not","event:goal",["signup"]]]`},
		{"a page of two rows: rows leave it",
			`,"dimensions":["event:page"],"pagination":{"limit":2},"include":{"total_rows":true}`},
		{"time dimension with labels", `,"dimensions":["time:minute"],"include":{"time_labels":true}`},
		{"no dimension", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			body := e.explicit(tt.extra)
			e.apply(e.row(30, "pageview", "/", "desktop", 1), e.row(29, "signup", "/", "desktop", 1))
			c, _ := e.subscribe(body, -1)
			e.settle(c, body)
			batches := [][]stats.Row{
				{e.row(20, "pageview", "/pricing", "mobile", 2)},
				{e.row(19, "pageview", "/docs", "mobile", 3), e.row(18, "pageview", "/docs", "tablet", 3)},
				{e.row(70, "pageview", "/docs", "desktop", 4), e.row(2, "signup", "/pricing", "mobile", 2)},
				{e.row(1, "pageview", "/cart", "desktop", 5), e.row(1, "pageview", "/cart", "desktop", 6), e.row(1, "pageview", "/cart", "desktop", 7)},
			}
			for _, b := range batches {
				e.apply(b...)
				e.settle(c, body)
			}
			if c.snaps != 1 || c.deltas == 0 {
				t.Errorf("%d snapshots and %d deltas, want 1 and some", c.snaps, c.deltas)
			}
		})
	}
}

// TestLiveVisits: a query of visits follows its rows too, though a new
// event changes visits counted before (visitor 1's second pageview ends
// a bounce; visitor 2's event 40 minutes on is a visit of its own).
func TestLiveVisits(t *testing.T) {
	e := newEnv(t, Config{})
	now := time.UnixMilli(e.now.Load()).UTC()
	body := fmt.Sprintf(`{"site_id":"shop","metrics":["visits","bounce_rate","visit_duration","visitors"],"date_range":[%q,%q],"dimensions":["visit:entry_page"]}`,
		now.Add(-2*time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	e.apply(e.row(60, "pageview", "/", "desktop", 1), e.row(59, "pageview", "/", "desktop", 2))
	c, _ := e.subscribe(body, -1)
	e.settle(c, body)
	for _, b := range [][]stats.Row{
		{e.row(50, "pageview", "/docs", "desktop", 1)},
		{e.row(19, "pageview", "/pricing", "mobile", 2)},
		{e.row(18, "signup", "/pricing", "mobile", 2), e.row(10, "pageview", "/", "desktop", 3)},
	} {
		e.apply(b...)
		e.settle(c, body)
	}
	got, _, _ := c.folded()
	if want := `[3,67,200,3]`; got[`["/"]`] != want {
		t.Errorf("visits entering at /: %s, want %s (%v)", got[`["/"]`], want, got)
	}
	if c.snaps != 1 || c.deltas < 3 {
		t.Errorf("%d snapshots and %d deltas, want 1 and a delta per commit", c.snaps, c.deltas)
	}
}

// TestLiveShared: identical queries, written differently, share one
// computation; it stops with its last subscriber.
func TestLiveShared(t *testing.T) {
	e := newEnv(t, Config{})
	now := time.UnixMilli(e.now.Load()).UTC()
	from, to := now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)
	a := fmt.Sprintf(`{"site_id":"shop","metrics":["events"],"date_range":[%q,%q],"dimensions":["event:page"]}`, from, to)
	b := fmt.Sprintf(`{ "dimensions":["event:page"], "date_range":[%q,%q], "metrics":["events"], "site_id":"shop", "pagination":{"limit":10000}}`, from, to)
	other := fmt.Sprintf(`{"site_id":"shop","metrics":["visitors"],"date_range":[%q,%q]}`, from, to)
	ca, stopA := e.subscribe(a, -1)
	cb, stopB := e.subscribe(b, -1)
	if n := e.m.Computations(); n != 1 {
		t.Fatalf("%d computations for one query written twice, want 1", n)
	}
	_, stopO := e.subscribe(other, -1)
	if n := e.m.Computations(); n != 2 {
		t.Fatalf("%d computations for two queries, want 2", n)
	}
	e.apply(e.row(5, "pageview", "/", "desktop", 1))
	e.settle(ca, a)
	e.settle(cb, b)
	stopA()
	if n := e.m.Computations(); n != 2 {
		t.Fatalf("%d computations after one of two subscribers left, want 2", n)
	}
	stopB()
	stopO()
	if n := e.m.Computations(); n != 0 {
		t.Fatalf("%d computations after every subscriber left, want 0", n)
	}
	e.m.mu.Lock()
	sites := len(e.m.sites)
	e.m.mu.Unlock()
	if sites != 0 {
		t.Errorf("%d sites watched after every subscriber left, want 0", sites)
	}
}

// TestLiveResume: a resume within the history replays the deltas after
// since; past it, a snapshot with "reset":true comes.
func TestLiveResume(t *testing.T) {
	e := newEnv(t, Config{History: 3})
	body := e.explicit(`,"dimensions":["event:page"]`)
	first, _ := e.subscribe(body, -1)
	start := first.seq
	for i := range 2 {
		e.apply(e.row(10, "pageview", "/p"+strconv.Itoa(i), "desktop", uint64(i+1)))
		e.settle(first, body)
	}
	// Within the history: the snapshot at start plus the replay.
	within := &client{rows: map[string]string{}, seq: start}
	stop, err := e.m.Subscribe(context.Background(), []byte(body), start, false, within.send)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if within.snaps != 0 || within.deltas != 2 {
		t.Errorf("resume within history: %d snapshots, %d deltas; want 0 and 2", within.snaps, within.deltas)
	}
	// At the head: nothing to send.
	rows, meta, _ := first.folded()
	head := &client{seq: first.seq, rows: rows, meta: meta} // a client that kept its state
	stopHead, err := e.m.Subscribe(context.Background(), []byte(body), first.seq, false, head.send)
	if err != nil {
		t.Fatal(err)
	}
	defer stopHead()
	if head.snaps+head.deltas != 0 {
		t.Errorf("resume at the head: %d messages, want none", head.snaps+head.deltas)
	}
	for i := 2; i < 6; i++ {
		e.apply(e.row(10, "pageview", "/p"+strconv.Itoa(i), "desktop", uint64(i+1)))
		e.settle(first, body)
	}
	e.settle(head, body)
	past := &client{seq: start}
	stopPast, err := e.m.Subscribe(context.Background(), []byte(body), start, false, past.send)
	if err != nil {
		t.Fatal(err)
	}
	defer stopPast()
	if past.snaps != 1 || past.resets != 1 {
		t.Errorf("resume past history: %d snapshots (%d reset), want 1 reset", past.snaps, past.resets)
	}
	e.settle(past, body)
}

// TestLiveRerange: a relative range is resolved again as the clock moves;
// rows that left it leave the answer in a delta.
func TestLiveRerange(t *testing.T) {
	e := newEnv(t, Config{Rerange: 10 * time.Millisecond})
	body := `{"site_id":"shop","metrics":["events"],"date_range":"30m","dimensions":["event:page"]}`
	e.apply(e.row(25, "pageview", "/old", "desktop", 1), e.row(5, "pageview", "/new", "desktop", 2))
	c, _ := e.subscribe(body, -1)
	e.settle(c, body)
	if got, _, _ := c.folded(); len(got) != 2 {
		t.Fatalf("before the clock moves: %v, want two pages", got)
	}
	e.now.Add((10 * time.Minute).Milliseconds())
	e.settle(c, body)
	if got, _, _ := c.folded(); len(got) != 1 {
		t.Fatalf("after the clock moved 10 minutes: %v, want /new alone", got)
	}
	if c.snaps != 1 {
		t.Errorf("%d snapshots, want 1: a moved range is a delta", c.snaps)
	}
}

// TestLiveRefuses: a query the Stats API refuses is its *stats.Error.
func TestLiveRefuses(t *testing.T) {
	e := newEnv(t, Config{})
	for body, part := range map[string]string{
		`{"site_id":"shop","metrics":["nope"],"date_range":"day"}`:                               "metrics[0]",
		`{"site_id":"shop","metrics":["visits"],"date_range":"day","dimensions":["event:page"]}`: "dimensions[0]",
		`{"site_id":"shop","metrics":["events"],"date_range":"12mo"}`:                            "date_range",
	} {
		_, err := e.m.Subscribe(context.Background(), []byte(body), -1, false, func(string, []byte) {})
		se, ok := err.(*stats.Error)
		if !ok || se.Part != part {
			t.Errorf("%s: error %v, want a *stats.Error of part %s", body, err, part)
		}
	}
	if n := e.m.Computations(); n != 0 {
		t.Errorf("%d computations after refused queries", n)
	}
}

// TestLiveSwitch: after a namespace switch every live query is counted
// again from the new namespace's rows and its subscribers get a reset
// snapshot; rows applied to the new namespace then arrive as deltas.
func TestLiveSwitch(t *testing.T) {
	e := newEnv(t, Config{})
	body := e.explicit(`,"dimensions":["event:page"]`)
	e.apply(e.row(5, "pageview", "/old", "desktop", 1))
	c, _ := e.subscribe(body, -1)
	e.settle(c, body)

	e.store = redisagg.New(e.rdb, e.cat, redisagg.Config{Namespace: "v2"})
	e.eng = statsquery.New(e.store, statsquery.Config{Now: func() time.Time { return time.UnixMilli(e.now.Load()) }})
	e.seq = 0
	e.apply(e.row(5, "pageview", "/new", "mobile", 2))
	e.ns.Store(&Namespace{Engine: e.eng, Channel: e.store.RowChannelOf})
	e.m.Switched()
	e.settle(c, body)
	if c.resets != 1 {
		t.Errorf("%d reset snapshots after a switch, want 1", c.resets)
	}
	e.apply(e.row(4, "pageview", "/newer", "mobile", 3))
	e.settle(c, body)
}

// TestLiveLimit: past MaxComputations distinct queries a new one is
// refused; a query already running still takes subscribers.
func TestLiveLimit(t *testing.T) {
	e := newEnv(t, Config{MaxComputations: 2})
	a, b := e.explicit(`,"dimensions":["event:page"]`), e.explicit(`,"dimensions":["visit:device"]`)
	e.subscribe(a, -1)
	e.subscribe(b, -1)
	if _, err := e.m.Subscribe(context.Background(), []byte(e.explicit(``)), -1, false, func(string, []byte) {}); err != ErrLimit {
		t.Fatalf("a third distinct query: error %v, want ErrLimit", err)
	}
	e.subscribe(a, -1)
	if n := e.m.Computations(); n != 2 {
		t.Errorf("%d computations, want 2", n)
	}
}

func TestGrownHours(t *testing.T) {
	tests := []struct {
		in   string
		want []int64
	}{
		{"1764115200000:120", []int64{1764115200000}},
		{"1764115200000:120,1764118800000:7", []int64{1764115200000, 1764118800000}},
		{"", nil},
		{"x:1", nil},
		{"1764115200000", nil},
		{"1764115200000:1,", nil},
	}
	for _, tt := range tests {
		if got := grownHours(tt.in); !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("grownHours(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestLiveHistoryBytes: the history is bounded in bytes too; a resume
// past what it holds gets a reset snapshot.
func TestLiveHistoryBytes(t *testing.T) {
	e := newEnv(t, Config{HistoryBytes: 1})
	body := e.explicit(`,"dimensions":["event:page"]`)
	first, _ := e.subscribe(body, -1)
	start := first.seq
	e.apply(e.row(10, "pageview", "/a", "desktop", 1))
	e.settle(first, body)
	c := &client{seq: start}
	stop, err := e.m.Subscribe(context.Background(), []byte(body), start, false, c.send)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if c.resets != 1 || c.deltas != 0 {
		t.Errorf("resume with a history of 1 byte: %d resets, %d deltas; want a reset snapshot", c.resets, c.deltas)
	}
}

// TestLiveRestartedHour: an hour's row string that began again (expired,
// or Redis lost it) is shorter than what was counted: the query is
// counted anew, and the rows that went leave the answer.
func TestLiveRestartedHour(t *testing.T) {
	e := newEnv(t, Config{})
	body := e.explicit(`,"dimensions":["event:page"]`)
	e.apply(e.row(1, "pageview", "/a", "desktop", 1), e.row(1, "pageview", "/b", "desktop", 2), e.row(1, "pageview", "/c", "desktop", 3))
	c, _ := e.subscribe(body, -1)
	e.settle(c, body)
	if err := e.rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	e.seq = 0
	e.apply(e.row(1, "pageview", "/d", "mobile", 4))
	e.settle(c, body)
	if got, _, _ := c.folded(); len(got) != 1 {
		t.Errorf("after the hour began again: %v, want /d alone", got)
	}
}
