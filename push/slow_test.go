package push

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// dialSmall opens a client whose socket receive buffer is tiny, so a client
// that stops reading stalls the server's writer quickly.
func dialSmall(t *testing.T, ts *httptest.Server) *client {
	t.Helper()
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
		if err != nil {
			return err
		}
		return serr
	}}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/v1/ws", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(-1)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &client{t: t, ws: ws, subs: map[string]*view{}}
}

func queuedPoints(h *Hub) (maxPoints int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		c.q.mu.Lock()
		maxPoints = max(maxPoints, c.q.points)
		c.q.mu.Unlock()
	}
	return maxPoints
}

// TestSlowClient: a client that reads nothing keeps a bounded queue (merged
// points, then a reset), never delays another client, and converges to the
// exact totals once it reads.
func TestSlowClient(t *testing.T) {
	e := newEnv(t)
	const limit = 100
	h, ts := e.hubWith(Config{SendQueue: limit, FlushEvery: 2 * time.Millisecond, StallClose: time.Hour}, true)
	now := time.Now().UnixMilli()
	from := now - 15*time.Minute.Milliseconds()
	e.apply(now, 1, "/a")

	slow := dialSmall(t, ts)
	slow.subscribe("s", "10s", "path", nil)
	slow.until(e.head(), "s") // its snapshot; then it stops reading
	fast := newClient(t, ts)
	fast.subscribe("s", "10s", "path", nil)
	fast.until(e.head(), "s")
	// The fast client reads all along, until it reaches target.
	var target atomic.Int64
	target.Store(math.MaxInt64)
	fastDone := make(chan struct{})
	go func() {
		defer close(fastDone)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for fast.subs["s"].seq < target.Load() {
			if _, err := fast.next(ctx); err != nil {
				return
			}
		}
	}()

	ps := paths(9)
	tss := []int64{now, now - 10_000, now - 20_000}
	for i := 0; i < 500 && value(h.m.merges) == 0; i++ {
		e.applyAt(tss, 1, ps...)
		if q := queuedPoints(h); q > limit {
			t.Fatalf("queue holds %d points, limit %d", q, limit)
		}
	}
	if value(h.m.merges) == 0 {
		t.Fatal("the slow client never had its points merged; it did not stall")
	}
	// New keys while stalled: several buckets at once.
	for i := range 20 {
		e.applyAt([]int64{now - int64(3+i)*10_000}, 1, ps...)
		if q := queuedPoints(h); q > limit {
			t.Fatalf("queue holds %d points, limit %d", q, limit)
		}
	}
	head := e.head() + 1
	target.Store(head)
	e.apply(now, 1, "/p0") // entry head, which ends the fast reader
	<-fastDone             // while the slow one still reads nothing
	if f := fast.subs["s"]; f.seq != head {
		t.Fatalf("fast client at seq %d, want %d", f.seq, head)
	}
	want := e.want("10s", "path", from, now)
	checkState(t, "fast", fast.subs["s"].state, want)

	slow.until(head, "s")
	checkState(t, "slow", slow.subs["s"].state, want)
	if slow.subs["s"].resets == 0 {
		t.Errorf("the slow client got no reset snapshot; its queue cannot have held %d new keys", 20*len(ps))
	}
	t.Logf("merges %v, resets %v; fast client: %d deltas, %d resets; slow client: %d deltas, %d resets",
		value(h.m.merges), value(h.m.resets), fast.subs["s"].deltas, fast.subs["s"].resets, slow.subs["s"].deltas, slow.subs["s"].resets)
}

// TestStallClose: a client that stays stalled past StallClose is closed
// (4008) and counted; the others keep their subscription.
func TestStallClose(t *testing.T) {
	e := newEnv(t)
	h, ts := e.hubWith(Config{SendQueue: 50, FlushEvery: 2 * time.Millisecond, StallClose: 100 * time.Millisecond}, true)
	now := time.Now().UnixMilli()
	e.apply(now, 1, "/a")
	slow := dialSmall(t, ts)
	slow.subscribe("s", "10s", "path", nil)
	slow.until(e.head(), "s")
	fast := newClient(t, ts)
	fast.subscribe("s", "10s", "path", nil)
	ps := paths(9)
	tss := []int64{now, now - 10_000, now - 20_000}
	// Keep the slow client's queue full until the hub gives up on it: the
	// memory source publishes far faster than StallClose, so the bound is
	// time, not a count of applies.
	for deadline := time.Now().Add(20 * time.Second); value(h.m.slowCloses) == 0 && time.Now().Before(deadline); {
		e.applyAt(tss, 1, ps...)
		time.Sleep(time.Millisecond)
	}
	if value(h.m.slowCloses) != 1 {
		t.Fatalf("slow closes = %v, want 1", value(h.m.slowCloses))
	}
	e.apply(now, 1, "/b")
	fast.until(e.head(), "s")
	checkState(t, "fast", fast.subs["s"].state, e.want("10s", "path", now-15*time.Minute.Milliseconds(), now))
}

func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
