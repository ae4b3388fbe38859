package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// liveQueryMsg is a server message of a live query.
type liveQueryMsg struct {
	Op      string `json:"op"`
	ID      string `json:"id"`
	Seq     int64  `json:"seq"`
	From    int64  `json:"from"`
	Reset   bool   `json:"reset"`
	Results []struct {
		Dimensions json.RawMessage `json:"dimensions"`
		Metrics    json.RawMessage `json:"metrics"`
	} `json:"results"`
	Removed []json.RawMessage `json:"removed"`
	Meta    json.RawMessage   `json:"meta"`
	Code    string            `json:"code"`
	Part    string            `json:"part"`
	Message string            `json:"message"`
}

// liveFold is what a client of a live query holds: the snapshot with
// every delta applied in order (upsert by dimensions, delete removed).
type liveFold struct {
	seq       int64
	rows      map[string]string // dimensions JSON -> metrics JSON
	meta      string
	snapshots int
	deltas    int
}

func (f *liveFold) apply(t *testing.T, m liveQueryMsg) {
	t.Helper()
	switch m.Op {
	case "snapshot":
		f.rows = map[string]string{}
		f.snapshots++
	case "delta":
		if f.rows == nil || m.From != f.seq+1 {
			t.Fatalf("delta from %d after seq %d: a gap", m.From, f.seq)
		}
		f.deltas++
		for _, r := range m.Removed {
			delete(f.rows, canon(r))
		}
	default:
		t.Fatalf("live query %s: %s %s (part %q)", m.ID, m.Code, m.Message, m.Part)
	}
	for _, r := range m.Results {
		f.rows[canon(r.Dimensions)] = canon(r.Metrics)
	}
	if m.Meta != nil {
		f.meta = canon(m.Meta)
	}
	f.seq = m.Seq
}

func canon(b json.RawMessage) string {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "undecodable: " + string(b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// postStatsFold answers body by POST /v1/stats, in a fold's form.
func (s *server) postStatsFold(ctx context.Context, t *testing.T, body string) (rows map[string]string, meta string) {
	t.Helper()
	status, b, err := s.postStats(ctx, []byte(body))
	if err != nil {
		t.Fatalf("POST /v1/stats: %v", err)
	}
	if status != http.StatusOK {
		t.Fatalf("POST /v1/stats %s: %d: %s", body, status, b)
	}
	var a liveQueryMsg
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	rows = map[string]string{}
	for _, r := range a.Results {
		rows[canon(r.Dimensions)] = canon(r.Metrics)
	}
	return rows, canon(a.Meta)
}

// liveReader reads c's messages on a goroutine of its own (a read with a
// deadline would close the WebSocket) until c closes, which the test's
// cleanup does; it waits for the goroutine.
func liveReader(t *testing.T, c *websocket.Conn) <-chan liveQueryMsg {
	ch := make(chan liveQueryMsg, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var m liveQueryMsg
			if err := json.Unmarshal(b, &m); err != nil {
				m = liveQueryMsg{Op: "undecodable", Message: string(b)}
			}
			ch <- m
		}
	}()
	t.Cleanup(func() { c.CloseNow(); <-done })
	return ch
}

// TestLiveStats subscribes live Stats API queries over /v1/ws, sends
// events in bursts, and checks that once traffic stops the snapshot with
// every delta folded in equals POST /v1/stats of the same body. It also
// checks that a refused query names its part and that the token's site
// scope is kept.
func TestLiveStats(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "read-tokens")
	if err := os.WriteFile(tokens, []byte(liveScopedToken+"=other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, "--read-tokens", tokens)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	now := time.Now().UTC()
	queries := map[string]string{
		"q1": fmt.Sprintf(`{"site_id":"livestats","metrics":["events","visitors","pageviews"],"date_range":[%q,%q],`+
			`"dimensions":["event:page","visit:device"],"filters":[["is_not","event:goal",["signup"]]]}`,
			now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)),
		"q2": `{"site_id":"livestats","metrics":["visitors","events"],"date_range":"day","dimensions":["event:goal"],"include":{"total_rows":true}}`,
	}
	// Two connections: q1 on the first, q1 again and q2 on the second
	// (the two q1 share one computation).
	c1 := s.subscribe(ctx, t, `{"op":"subscribe","id":"q1","query":`+queries["q1"]+`}`)
	c2 := s.subscribe(ctx, t, `{"op":"subscribe","id":"q1","query":`+queries["q1"]+`}`)
	if err := c2.Write(ctx, websocket.MessageText, []byte(`{"op":"subscribe","id":"q2","query":`+queries["q2"]+`}`)); err != nil {
		t.Fatal(err)
	}
	r1, r2 := liveReader(t, c1), liveReader(t, c2)
	refused(ctx, t, s)
	outOfScope(ctx, t, s, queries["q1"])

	sent := sendLiveBursts(ctx, t, s, 0, 6)

	conns := []struct {
		msgs  <-chan liveQueryMsg
		folds map[string]*liveFold
	}{{r1, map[string]*liveFold{"q1": {}}}, {r2, map[string]*liveFold{"q1": {}, "q2": {}}}}
	for i, c := range conns {
		for id, f := range c.folds {
			settleLive(ctx, t, s, c.msgs, c.folds, id, queries[id], sent)
			t.Logf("connection %d, live query %s: %d rows after %d deltas, seq %d", i+1, id, len(f.rows), f.deltas, f.seq)
		}
	}
	if a, b := conns[0].folds["q1"].seq, conns[1].folds["q1"].seq; a != b {
		t.Errorf("q1 ends at seq %d and %d on two connections: one shared computation numbers both", a, b)
	}

	// The first connection drops; its client reconnects with since while
	// the second keeps the query running: it gets only the deltas it missed.
	c1.CloseNow()
	held := conns[0].folds["q1"]
	sent += sendLiveBursts(ctx, t, s, 6, 2)
	c3 := s.subscribe(ctx, t, fmt.Sprintf(`{"op":"subscribe","id":"q1","query":%s,"since":%d}`, queries["q1"], held.seq))
	resumed := map[string]*liveFold{"q1": {seq: held.seq, rows: maps.Clone(held.rows), meta: held.meta}}
	settleLive(ctx, t, s, liveReader(t, c3), resumed, "q1", queries["q1"], sent)
	if f := resumed["q1"]; f.snapshots != 0 || f.deltas == 0 {
		t.Errorf("resume by since: %d snapshots and %d deltas, want only deltas", f.snapshots, f.deltas)
	}
}

// sendLiveBursts sends bursts of 60 events of the test's site, from two
// user agents (two devices), apart enough for several deltas, and returns
// how many it sent.
func sendLiveBursts(ctx context.Context, t *testing.T, s *server, first, bursts int) int {
	t.Helper()
	uas := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
	}
	types := []string{"pageview", "pageview", "signup", "click"}
	sent := 0
	for burst := first; burst < first+bursts; burst++ {
		for u, ua := range uas {
			var lines []string
			for i := range 30 {
				n := burst*1000 + u*100 + i
				lines = append(lines, fmt.Sprintf(`{"id":"ls-%d","site":"livestats","type":%q,"url":"https://shop.test/p%d","uid":"v%d"}`,
					n, types[i%len(types)], (i+burst)%7, n%17))
			}
			code, res, err := s.post(ctx, []byte(strings.Join(lines, "\n")), ua)
			if err != nil || code != http.StatusAccepted || res.Accepted != len(lines) {
				t.Fatalf("collect: %d %+v %v", code, res, err)
			}
			sent += len(lines)
		}
		time.Sleep(150 * time.Millisecond)
	}
	return sent
}

// liveScopedToken is a read token of the site "other" alone.
const liveScopedToken = "live-scoped-0123456789"

// outOfScope checks that a live query of a site the connection's token
// does not grant is refused with forbidden.
func outOfScope(ctx context.Context, t *testing.T, s *server, query string) {
	t.Helper()
	c, _, err := websocket.Dial(ctx, "ws://"+s.addr+"/v1/ws?token="+liveScopedToken, &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"http://" + s.addr}},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"op":"subscribe","id":"x","query":`+query+`}`)); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m liveQueryMsg
	if err := json.Unmarshal(b, &m); err != nil || m.Op != "error" || m.Code != "forbidden" {
		t.Errorf("live query of an ungranted site answered %s, want forbidden", b)
	}
}

// settleLive reads c until every event sent is counted and the fold of
// query id equals POST /v1/stats of its body.
func settleLive(ctx context.Context, t *testing.T, s *server, msgs <-chan liveQueryMsg, fs map[string]*liveFold, id, body string, sent int) {
	t.Helper()
	for {
		var m liveQueryMsg
		ok := true
		select {
		case m, ok = <-msgs:
			if !ok {
				t.Fatalf("the WebSocket of live query %s closed", id)
			}
		case <-time.After(time.Second):
			ok = false
		}
		if ok {
			f := fs[m.ID]
			if f == nil {
				t.Fatalf("message of unknown id %q: %+v", m.ID, m)
			}
			f.apply(t, m)
			continue
		}
		// Quiet: compare once every event is counted.
		want, meta := s.postStatsFold(ctx, t, body)
		if liveCounted(ctx, t, s) < sent {
			continue
		}
		f := fs[id]
		if maps.Equal(f.rows, want) && f.meta == meta {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("live query %s never settled:\n fold %v %s\n REST %v %s", id, f.rows, f.meta, want, meta)
		}
	}
}

// liveCounted is the number of events of the test's site the Stats API counts.
func liveCounted(ctx context.Context, t *testing.T, s *server) int {
	rows, _ := s.postStatsFold(ctx, t, `{"site_id":"livestats","metrics":["events"],"date_range":"24h"}`)
	for _, m := range rows {
		var v []int
		if err := json.Unmarshal([]byte(m), &v); err == nil && len(v) == 1 {
			return v[0]
		}
	}
	return 0
}

// refused checks that a live query the API refuses is answered with
// bad_query naming its part.
func refused(ctx context.Context, t *testing.T, s *server) {
	t.Helper()
	c := s.subscribe(ctx, t, `{"op":"subscribe","id":"bad","query":{"site_id":"livestats","metrics":["events","nope"],"date_range":"day"}}`)
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m liveQueryMsg
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Op != "error" || m.ID != "bad" || m.Code != "bad_query" || m.Part != "metrics[1]" || !strings.HasPrefix(m.Message, "metrics[1]: ") {
		t.Errorf("refused query answered %s, want bad_query naming metrics[1]", b)
	}
}
