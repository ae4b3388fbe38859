package push

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pulsehq/pulse/stats"
)

// recordedLive is a LiveQueries that records what the hub asks of it and
// answers with fixed bodies, so the hub's part of live queries (checks,
// splicing, stops) is tested apart from livequery's computations
// (livequery's tests run those on a real redis-server).
type recordedLive struct {
	err error // what Subscribe fails with

	mu       sync.Mutex
	sends    []func(op string, body []byte)
	since    []int64
	resets   []bool
	stops    int
	stopped  chan struct{}
	switched int
}

func newRecordedLive(err error) *recordedLive {
	return &recordedLive{err: err, stopped: make(chan struct{}, 16)}
}

func (r *recordedLive) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func (r *recordedLive) Subscribe(_ context.Context, body []byte, since int64, reset bool, send func(string, []byte)) (func(), error) {
	if r.err != nil {
		return nil, r.err
	}
	r.mu.Lock()
	r.sends = append(r.sends, send)
	r.since = append(r.since, since)
	r.resets = append(r.resets, reset)
	r.mu.Unlock()
	if since < 0 {
		send("snapshot", []byte(`"seq":5,"results":[],"meta":{"approximate":[]},"query":{}}`))
	}
	return func() {
		r.mu.Lock()
		r.stops++
		r.mu.Unlock()
		r.stopped <- struct{}{}
	}, nil
}

func (r *recordedLive) Switched() {
	r.mu.Lock()
	r.switched++
	r.mu.Unlock()
}

const liveBody = `{"site_id":"demo","metrics":["events"],"date_range":"day"}`

// readRaw reads one message as it came.
func readRaw(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func writeRaw(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	if err := ws.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// TestLiveSubscribeRefused: what the hub answers, without a computation,
// to live queries it must refuse.
func TestLiveSubscribeRefused(t *testing.T) {
	tests := []struct {
		name  string
		live  LiveQueries
		query string
		want  string
	}{
		{"a query the Stats API refuses names its part", newRecordedLive(nil),
			`{"site_id":"demo","metrics":["events","nope"],"date_range":"day"}`,
			`{"op":"error","id":"q1","code":"bad_query","message":"metrics[1]: unknown metric \"nope\"`},
		{"a site the token does not grant", newRecordedLive(nil),
			`{"site_id":"other","metrics":["events"],"date_range":"day"}`,
			`{"op":"error","id":"q1","code":"forbidden","message":"this read token does not grant site \"other\""}`},
		{"a query the computation refuses (past retention)", newRecordedLive(&stats.Error{Part: "date_range", Msg: "too old"}),
			liveBody, `{"op":"error","id":"q1","code":"bad_query","message":"date_range: too old","part":"date_range"}`},
		{"the store fails", newRecordedLive(errors.New("redis down")),
			liveBody, `{"op":"error","id":"q1","code":"unavailable","message":"subscription failed, retry later: redis down"}`},
		{"no live queries on this node", nil,
			liveBody, `{"op":"error","id":"q1","code":"unavailable","message":"this node answers no live queries"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			_, ts := e.hub(Config{Live: tt.live, Tokens: scopedTokens{"demo-only": {"demo"}}})
			ws, _, err := dial(t, ts, "?token=demo-only", nil)
			if err != nil {
				t.Fatal(err)
			}
			writeRaw(t, ws, `{"op":"subscribe","id":"q1","query":`+tt.query+`}`)
			got := readRaw(t, ws)
			if len(got) < len(tt.want) || got[:len(tt.want)] != tt.want {
				t.Fatalf("answer\n got %s\nwant %s...", got, tt.want)
			}
			// The connection stays open and the id free.
			writeRaw(t, ws, `{"op":"unsubscribe","id":"q1"}`)
			if got := readRaw(t, ws); got != `{"op":"error","id":"q1","code":"unknown_id","message":"no subscription \"q1\""}` {
				t.Fatalf("unsubscribe of a refused query: %s", got)
			}
		})
	}
}

// TestLiveSubscribe: the computation's bodies reach the client behind the
// subscription's op and id; since is handed on; unsubscribe and the end of
// the connection stop the subscription; a namespace switch is passed on.
func TestLiveSubscribe(t *testing.T) {
	e := newEnv(t)
	live := newRecordedLive(nil)
	h, ts := e.hub(Config{Live: live})
	ws, _, err := dial(t, ts, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	writeRaw(t, ws, `{"op":"subscribe","id":"q1","query":`+liveBody+`}`)
	if got, want := readRaw(t, ws), `{"op":"snapshot","id":"q1","seq":5,"results":[],"meta":{"approximate":[]},"query":{}}`; got != want {
		t.Fatalf("snapshot\n got %s\nwant %s", got, want)
	}
	live.mu.Lock()
	send := live.sends[0]
	live.mu.Unlock()
	send("delta", []byte(`"from":6,"seq":6,"results":[{"dimensions":[],"metrics":[1]}],"removed":[]}`))
	if got, want := readRaw(t, ws), `{"op":"delta","id":"q1","from":6,"seq":6,"results":[{"dimensions":[],"metrics":[1]}],"removed":[]}`; got != want {
		t.Fatalf("delta\n got %s\nwant %s", got, want)
	}
	writeRaw(t, ws, `{"op":"subscribe","id":"q2","query":`+liveBody+`,"since":6}`)
	writeRaw(t, ws, `{"op":"unsubscribe","id":"q1"}`)
	<-live.stopped
	if err := h.Switch(context.Background(), nil, func() {}); err != nil {
		t.Fatal(err)
	}
	_ = ws.CloseNow()
	<-live.stopped // q2, with the connection
	live.mu.Lock()
	defer live.mu.Unlock()
	if len(live.since) != 2 || live.since[0] != -1 || live.since[1] != 6 {
		t.Errorf("since handed on %v, want [-1 6]", live.since)
	}
	if live.stops != 2 || live.switched != 1 {
		t.Errorf("%d stops and %d switches, want 2 and 1", live.stops, live.switched)
	}
}

// TestLiveSlowReset: a client that does not read gets, past the queue's
// bytes, no more deltas but, once it has read its queue, a new snapshot
// asked for with reset.
func TestLiveSlowReset(t *testing.T) {
	e := newEnv(t)
	live := newRecordedLive(nil)
	_, ts := e.hubWith(Config{Live: live}, true) // a small socket buffer: the writer blocks
	ws, _, err := dial(t, ts, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	writeRaw(t, ws, `{"op":"subscribe","id":"q1","query":`+liveBody+`}`)
	readRaw(t, ws) // the snapshot
	live.mu.Lock()
	send := live.sends[0]
	live.mu.Unlock()
	big := make([]byte, maxQueuedBytes/3)
	for i := range big {
		big[i] = 'x'
	}
	body := []byte(`"from":6,"seq":6,"results":[],"removed":[],"pad":"` + string(big) + `"}`)
	for range 8 { // 2.7 queues' worth while the client reads nothing
		send("delta", body)
	}
	deltas := 0
	for {
		m := readRaw(t, ws)
		if m[:len(`{"op":"snapshot"`)] == `{"op":"snapshot"` {
			break
		}
		deltas++
	}
	live.mu.Lock()
	defer live.mu.Unlock()
	if deltas >= 8 || len(live.resets) != 2 || !live.resets[1] || live.since[1] != -1 {
		t.Errorf("%d of 8 deltas sent, subscribes with reset %v since %v; want fewer deltas and a second subscribe with reset", deltas, live.resets, live.since)
	}
}
