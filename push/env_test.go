package push

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pulsehq/pulse/metric"
)

// env is a memory source with the built-in catalog, and the hubs on it.
type env struct {
	t   testing.TB
	cat *metric.Catalog
	src *MemorySource
	// pipes serves hubs on a pipeNet instead of loopback TCP: set it in a
	// synctest bubble.
	pipes bool
}

func newEnv(t testing.TB) *env {
	t.Helper()
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, cat: cat, src: NewMemorySource(cat, MemoryConfig{})}
}

// hub starts a Hub (a push node) on the source and serves it.
func (e *env) hub(cfg Config) (*Hub, *httptest.Server) { return e.hubWith(cfg, false) }

// smallBufListener shrinks the send buffer of accepted connections, so a
// client that stops reading blocks the server's writer within a few KB.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(2048)
	}
	return c, err
}

func (e *env) hubWith(cfg Config, smallBuf bool) (*Hub, *httptest.Server) {
	e.t.Helper()
	cfg.Catalog = e.cat
	wrap := loopback
	switch {
	case e.pipes: // for tests in a synctest bubble
		wrap = func(l net.Listener) net.Listener { _ = l.Close(); return newPipeNet() }
	case smallBuf:
		wrap = func(l net.Listener) net.Listener { return smallBufListener{l} }
	}
	return serveHub(e.t, New(e.src, cfg), wrap)
}

// loopback is the test server's own listener, unchanged.
func loopback(l net.Listener) net.Listener { return l }

// serveHub runs h and serves it, on the listener wrap makes of the test
// server's loopback one, until the test ends; it returns once Run accepts
// connections.
func serveHub(t testing.TB, h *Hub, wrap func(net.Listener) net.Listener) (*Hub, *httptest.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	ts := httptest.NewUnstartedServer(h)
	ts.Listener = wrap(ts.Listener)
	ts.Start()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hub run: %v", err)
		}
		ts.Close()
	})
	waitRunning(t, h)
	return h, ts
}

// waitRunning returns once h's loop runs: Run marks the hub running before
// its loop takes the first request.
func waitRunning(t testing.TB, h *Hub) {
	t.Helper()
	if err := h.do(context.Background(), func(Listener) {}); err != nil {
		t.Fatalf("hub not running: %v", err)
	}
}

// apply publishes one commit adding n pageviews at ts to each path, as the
// aggregator would through the store.
func (e *env) apply(ts int64, n int64, paths ...string) {
	e.t.Helper()
	e.applyAt([]int64{ts}, n, paths...)
}

// applyAt publishes one commit adding n pageviews to each path at each ts:
// one point per bucket and label, as the store writes them.
func (e *env) applyAt(tss []int64, n int64, paths ...string) {
	e.t.Helper()
	adds := map[DeltaPoint]int64{} // keyed with Add and Value 0
	var order []DeltaPoint
	add := func(p DeltaPoint) {
		if _, ok := adds[p]; !ok {
			order = append(order, p)
		}
		adds[p] += n
	}
	for _, st := range e.cat.Steps {
		for _, ts := range tss {
			b := st.Bucket(ts)
			for _, p := range paths {
				add(DeltaPoint{Step: st.Name, T: b})
				add(DeltaPoint{Step: st.Name, T: b, Label: Label{Dim: "path", Value: p}})
			}
		}
	}
	pts := make([]DeltaPoint, len(order))
	for i, p := range order {
		p.Add = adds[p]
		pts[i] = p
	}
	if _, err := e.src.Publish("demo", "pageviews", pts); err != nil {
		e.t.Fatalf("publish: %v", err)
	}
}

func (e *env) head() int64 { return e.headOf("pageviews") }

func (e *env) headOf(metric string) int64 {
	e.t.Helper()
	n, err := e.src.Last(context.Background(), "demo", metric)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// want reads the series a client of q should hold now.
func (e *env) want(step, groupBy string, from, to int64) map[string]int64 {
	e.t.Helper()
	return e.wantMetric("pageviews", step, groupBy, from, to)
}

func (e *env) wantMetric(metric, step, groupBy string, from, to int64) map[string]int64 {
	e.t.Helper()
	_, series, err := e.src.Snapshot(context.Background(), SnapshotQuery{Site: "demo", Metric: metric, Step: step, From: from, To: to, GroupBy: groupBy, Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int64{}
	for _, s := range series {
		lb, _ := json.Marshal(s.Labels)
		if len(s.Labels) == 0 {
			lb = []byte("{}")
		}
		for _, p := range s.Points {
			if p[1] != 0 {
				out[string(lb)+"@"+strconv.FormatInt(p[0], 10)] = p[1]
			}
		}
	}
	return out
}

// client is a test dashboard: it applies snapshots and deltas to its own
// state and checks the chain of every subscription.
type client struct {
	t    testing.TB
	ws   *websocket.Conn
	subs map[string]*view
	errs []serverMsg
}

type view struct {
	seq    int64
	state  map[string]int64 // labels@t -> value
	snaps  int
	resets int
	deltas int
}

type serverMsg struct {
	Op     string   `json:"op"`
	ID     string   `json:"id"`
	Seq    int64    `json:"seq"`
	From   int64    `json:"from"`
	Reset  bool     `json:"reset"`
	Series []Series `json:"series"`
	Points []struct {
		Labels map[string]string `json:"labels"`
		T      int64             `json:"t"`
		Add    int64             `json:"add"`
		Value  int64             `json:"value"`
	} `json:"points"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func dial(t testing.TB, ts *httptest.Server, query string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	u := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/ws" + query
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{HTTPHeader: hdr}
	if pn, ok := ts.Listener.(*pipeNet); ok {
		opts.HTTPClient = pn.client()
	}
	ws, resp, err := websocket.Dial(ctx, u, opts)
	if err == nil {
		ws.SetReadLimit(-1)
		t.Cleanup(func() { _ = ws.CloseNow() })
	}
	return ws, resp, err
}

func newClient(t testing.TB, ts *httptest.Server) *client {
	t.Helper()
	return newClientAt(t, ts, "")
}

// newClientAt is newClient with query (such as "?token=T") on the URL.
func newClientAt(t testing.TB, ts *httptest.Server, query string) *client {
	t.Helper()
	ws, _, err := dial(t, ts, query, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, ws: ws, subs: map[string]*view{}}
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.ws.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *client) subscribe(id, step, groupBy string, since *int64) {
	c.subscribeMetric(id, "pageviews", step, groupBy, since)
}

func (c *client) subscribeMetric(id, metric, step, groupBy string, since *int64) {
	m := map[string]any{"op": "subscribe", "id": id, "site": "demo", "metric": metric, "step": step, "window": "15m"}
	if groupBy != "" {
		m["group_by"] = []string{groupBy}
	}
	if since != nil {
		m["since"] = *since
	}
	c.send(m)
}

// next reads and applies one message.
func (c *client) next(ctx context.Context) (serverMsg, error) {
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return serverMsg{}, err
	}
	var m serverMsg
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("server sent %s: %v", b, err)
	}
	switch m.Op {
	case "snapshot":
		v := c.subs[m.ID]
		if v == nil {
			v = &view{}
			c.subs[m.ID] = v
		}
		v.state = map[string]int64{}
		v.seq = m.Seq
		v.snaps++
		if m.Reset {
			v.resets++
		}
		for _, s := range m.Series {
			lb, _ := json.Marshal(s.Labels)
			if len(s.Labels) == 0 {
				lb = []byte("{}")
			}
			for _, p := range s.Points {
				if p[1] != 0 {
					v.state[string(lb)+"@"+strconv.FormatInt(p[0], 10)] = p[1]
				}
			}
		}
	case "delta":
		v := c.subs[m.ID]
		if v == nil {
			c.t.Fatalf("delta for %q before its snapshot: %s", m.ID, b)
		}
		if m.From != v.seq+1 || m.Seq < m.From {
			c.t.Fatalf("sub %s: delta %d..%d after seq %d: gap or overlap", m.ID, m.From, m.Seq, v.seq)
		}
		v.seq = m.Seq
		v.deltas++
		for _, p := range m.Points {
			lb, _ := json.Marshal(p.Labels)
			if len(p.Labels) == 0 {
				lb = []byte("{}")
			}
			k := string(lb) + "@" + strconv.FormatInt(p.T, 10)
			if v.state[k]+p.Add != p.Value {
				c.t.Fatalf("sub %s: point %s: held %d + add %d != value %d", m.ID, k, v.state[k], p.Add, p.Value)
			}
			v.state[k] = p.Value
		}
	case "error":
		c.errs = append(c.errs, m)
	default:
		c.t.Fatalf("unknown message %s", b)
	}
	return m, nil
}

// until reads until every listed subscription has reached seq.
func (c *client) until(seq int64, ids ...string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		done := true
		for _, id := range ids {
			if v := c.subs[id]; v == nil || v.seq < seq {
				done = false
			}
		}
		if done {
			return
		}
		if _, err := c.next(ctx); err != nil {
			c.t.Fatalf("waiting for seq %d of %v: %v (have %s)", seq, ids, err, c.describe())
		}
	}
}

// expectError reads until an error message comes.
func (c *client) expectError() serverMsg {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(c.errs) == 0 {
		if _, err := c.next(ctx); err != nil {
			c.t.Fatalf("waiting for an error message: %v", err)
		}
	}
	m := c.errs[0]
	c.errs = c.errs[1:]
	return m
}

func (c *client) describe() string {
	var b strings.Builder
	for id, v := range c.subs {
		fmt.Fprintf(&b, "%s:seq=%d ", id, v.seq)
	}
	return b.String()
}

// checkState compares a view with the store.
func checkState(t testing.TB, name string, got, want map[string]int64) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s = %d, store has %d", name, k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && g != 0 {
			t.Errorf("%s: %s = %d, store has none", name, k, g)
		}
	}
}
