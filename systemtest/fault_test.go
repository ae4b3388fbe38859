package systemtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pulsehq/pulse/internal/redistest"
)

// TestRedisRestart restarts redis-server (with AOF) under load, and keeps it
// down for seconds: ingest keeps accepting into the stream, /readyz says
// not ready while Redis is gone, and once it is back the aggregates equal
// the ground truth exactly.
func TestRedisRestart(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	s := newServer(t, "--redis", rs.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	now := time.Now()
	tr := newTruth()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(now.UnixNano()), uint64(w)))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var evs []genEvent
				var body []byte
				ua := r.IntN(3) // one User-Agent per request, as a browser sends
				for j := 0; j < 10; j++ {
					e := newGenEvent(r, w*1_000_000+i*10+j, now, ua)
					evs = append(evs, e)
					body = append(append(body, e.json()...), '\n')
				}
				code, res, err := s.post(ctx, body, evs[0].UA)
				if err != nil || code != 202 || res.Accepted != len(evs) {
					t.Errorf("collect while Redis restarts: %d %+v %v", code, res, err)
					return
				}
				for _, e := range evs {
					tr.add(e)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}(w)
	}

	time.Sleep(time.Second)
	rs.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for readyz(t, s) == http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still 200 with Redis down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // Redis stays down; ingest goes on
	rs.Restart(t)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d events acknowledged", tr.size())
	for {
		last, err := checkAll(ctx, t, s, tr, now)
		if err == nil && last == "" && readyz(t, s) == http.StatusOK {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after the Redis restart: %v %s", err, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func readyz(t *testing.T, s *server) int {
	t.Helper()
	resp, err := http.Get(s.url("/readyz"))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestGracefulStop: SIGTERM closes live WebSockets with 1001 (going away),
// lets the process exit on its own, and loses nothing acknowledged: after a
// restart the counts are exact.
func TestGracefulStop(t *testing.T) {
	rs := redistest.Start(t)
	s := newServer(t, "--redis", rs.URL())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := s.subscribe(ctx, t, `{"op":"subscribe","id":"g","site":"grace","metric":"events","step":"10s","window":"5m"}`)
	read(ctx, t, c) // snapshot
	const n = 200
	var body []byte
	for i := 0; i < n; i++ {
		body = append(body, fmt.Sprintf(`{"id":"g-%d","site":"grace","type":"click"}`+"\n", i)...)
	}
	if code, res, err := s.post(ctx, body, "test"); err != nil || code != 202 || res.Accepted != n {
		t.Fatalf("collect: %d %+v %v", code, res, err)
	}
	exited := make(chan struct{})
	go func() { s.stop(syscall.SIGTERM); close(exited) }()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue // deltas still flowing while the hub drains
		}
		if st := websocket.CloseStatus(err); st != websocket.StatusGoingAway {
			t.Fatalf("websocket ended with %v (status %d), want 1001 going away", err, st)
		}
		break
	}
	select {
	case <-exited:
	case <-ctx.Done():
		t.Fatal("pulse did not exit after SIGTERM")
	}
	s.run()
	for {
		var got queryResult
		err := s.get(ctx, "/v1/query", queryValues("grace", "events", "1h", "", time.Now().Add(-2*time.Hour).UnixMilli(), time.Now().UnixMilli()), &got)
		var sum float64
		for _, se := range got.Series {
			for _, p := range se.Points {
				sum += p[1]
			}
		}
		if err == nil && sum == n {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("after restart: %v events, want %d (%v)", sum, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
