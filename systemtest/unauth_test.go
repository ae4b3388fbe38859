package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// attackUnauthWS: 66 upgrades without a token from one address get at
// most 4 (push's MaxUnauthPerAddr) 101s, the rest 429 before the upgrade;
// a dashboard client with a token still connects and reads; the idle ones
// are closed 1008 after the 2 s auth deadline, and their slots serve a
// client that authenticates with the auth message.
func attackUnauthWS(t *testing.T, ctx context.Context, s *server) string {
	refusedBefore := s.metricValue(t, `pulse_push_unauth_refused_total{reason="per_address"}`)
	wsURL := "ws://" + s.addr + "/v1/ws"

	const attempts, limit = 66, 4
	var open []*websocket.Conn
	refused := 0
	start := time.Now()
	for range attempts {
		c, resp, err := websocket.Dial(ctx, wsURL, nil)
		if err != nil {
			if resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("dial without token: %v %v, want 429 with Retry-After", err, resp)
			}
			refused++
			continue
		}
		open = append(open, c)
		t.Cleanup(func() { _ = c.CloseNow() })
	}
	flood := time.Since(start)
	if len(open) == 0 || len(open) > limit || refused != attempts-len(open) {
		t.Fatalf("%d upgrades admitted, %d refused; want 1..%d admitted, the rest refused", len(open), refused, limit)
	}
	if got := s.metricValue(t, `pulse_push_unauth_refused_total{reason="per_address"}`) - refusedBefore; got != float64(refused) {
		t.Fatalf("pulse_push_unauth_refused_total{reason=\"per_address\"} rose by %v, want %d", got, refused)
	}

	// A dashboard client with its token is not held up by them.
	dash := s.wsDial(ctx, t, wsURL+"?token="+readToken)
	s.wsSubscribeSnapshot(ctx, t, dash, "d")

	// The flood's connections are closed 1008 at the auth deadline.
	for i, c := range open {
		code := wsCloseCode(ctx, c)
		if code != websocket.StatusPolicyViolation {
			t.Fatalf("connection %d closed with %v, want 1008", i, code)
		}
	}
	held := time.Since(start)
	if held > 6*time.Second {
		t.Fatalf("unauthenticated connections held %v, want about the 2 s deadline", held)
	}

	// Their slots are free again: a client authenticating by message
	// connects and reads.
	late := s.wsDialRetry(ctx, t, wsURL)
	b, _ := json.Marshal(map[string]string{"op": "auth", "token": readToken})
	if err := late.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	s.wsSubscribeSnapshot(ctx, t, late, "l")
	s.wsSubscribeSnapshot(ctx, t, dash, "d2")
	return fmt.Sprintf("%d upgrades without a token from one address in %v: %d got 101 (bound %d), %d got 429; all closed 1008 %v after the first (deadline 2 s); a dashboard with its token was served throughout",
		attempts, flood.Round(time.Millisecond), len(open), limit, refused, held.Round(time.Millisecond))
}

func (s *server) wsDial(ctx context.Context, t *testing.T, u string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// wsDialRetry dials until admitted: the server releases a closed
// connection's slot on its own time.
func (s *server) wsDialRetry(ctx context.Context, t *testing.T, u string) *websocket.Conn {
	t.Helper()
	for ctx.Err() == nil {
		c, _, err := websocket.Dial(ctx, u, nil)
		if err == nil {
			c.SetReadLimit(-1)
			t.Cleanup(func() { _ = c.CloseNow() })
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("dial %s: no admission", u)
	return nil
}

// wsSubscribeSnapshot subscribes to demo's pageviews and wants the snapshot.
func (s *server) wsSubscribeSnapshot(ctx context.Context, t *testing.T, c *websocket.Conn, id string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"op": "subscribe", "id": id, "site": "demo", "metric": "pageviews", "step": "1m", "window": "1h"})
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("subscribe %s: %v", id, err)
	}
	// Deltas of the connection's earlier subscriptions may come first.
	for {
		m := read(ctx, t, c)
		if m.Op == "snapshot" && m.ID == id {
			return
		}
		if m.Op != "delta" || m.ID == id {
			t.Fatalf("subscribe %s: got %+v, want its snapshot", id, m)
		}
	}
}

// wsCloseCode reads until the connection ends and returns its close code.
func wsCloseCode(ctx context.Context, c *websocket.Conn) websocket.StatusCode {
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}
