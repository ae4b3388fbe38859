package push

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
)

// TestUnauthCaps: upgrades without a token are capped per address and in
// all, apart from authenticated ones; the auth message frees the slot and
// the connection keeps working; one that never authenticates is closed
// 1008 after Config.AuthTimeout and frees its slot.
func TestUnauthCaps(t *testing.T) { synctest.Test(t, testUnauthCaps) }

func testUnauthCaps(t *testing.T) {
	e := newEnv(t)
	e.pipes = true
	h, ts := e.hub(Config{Tokens: tokenSet{"good": true}, MaxUnauthPerAddr: 2, MaxUnauth: 3,
		ClientAddr: func(r *http.Request) string { return r.Header.Get("X-Test-Addr") }})
	from := func(addr string) http.Header { return http.Header{"X-Test-Addr": {addr}} }
	open := func(addr, query string) *websocket.Conn {
		t.Helper()
		ws, _, err := dial(t, ts, query, from(addr))
		if err != nil {
			t.Fatalf("upgrade from %s%s: %v", addr, query, err)
		}
		return ws
	}
	refused := func(addr, reason string) {
		t.Helper()
		before := value(h.m.unauthRefused.WithLabelValues(reason))
		_, resp, err := dial(t, ts, "", from(addr))
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("upgrade from %s: err %v, resp %v; want 429 with Retry-After", addr, err, resp)
		}
		if got := value(h.m.unauthRefused.WithLabelValues(reason)) - before; got != 1 {
			t.Fatalf("refusals counted as %s: %v, want 1", reason, got)
		}
	}

	a1, a2 := open("a", ""), open("a", "")
	refused("a", refusedPerAddr)
	open("a", "?token=good") // an authenticated upgrade is not capped by them
	if ws, _, err := dial(t, ts, "", http.Header{"X-Test-Addr": {"a"}, "Authorization": {"Bearer good"}}); err != nil {
		t.Fatalf("upgrade with Authorization: Bearer: %v", err) // nor by a header token
	} else {
		defer ws.CloseNow()
	}
	if _, resp, err := dial(t, ts, "", http.Header{"X-Test-Addr": {"a"}, "Authorization": {"Bearer bad"}}); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("upgrade with a bad Bearer token: %v %v, want 401", err, resp)
	}
	open("b", "")
	refused("c", refusedTotal)

	// a1 authenticates: its slot is free, and it can subscribe.
	cl := &client{t: t, ws: a1, subs: map[string]*view{}}
	cl.send(map[string]any{"op": "auth", "token": "good"})
	synctest.Wait()
	a3 := open("a", "")
	cl.subscribe("s", "10s", "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if m, err := cl.next(ctx); err != nil || m.Op != "snapshot" {
		t.Fatalf("subscribe after auth: %+v, %v; want a snapshot", m, err)
	}

	// a2 and a3 never authenticate: closed 1008 after the default 2 s.
	start := time.Now()
	if code := closeCode(t, a2); code != websocket.StatusPolicyViolation {
		t.Fatalf("unauthenticated connection closed with %v, want 1008", code)
	}
	if d := time.Since(start); d != DefaultAuthTimeout {
		t.Fatalf("closed after %v, want %v", d, DefaultAuthTimeout)
	}
	if code := closeCode(t, a3); code != websocket.StatusPolicyViolation {
		t.Fatalf("unauthenticated connection closed with %v, want 1008", code)
	}
	synctest.Wait()
	open("a", "")
	open("a", "")
	refused("a", refusedPerAddr)
	// The authenticated connection outlived them.
	cl.subscribe("t", "10s", "", nil)
	if m, err := cl.next(ctx); err != nil || m.Op != "snapshot" {
		t.Fatalf("subscribe after the others closed: %+v, %v; want a snapshot", m, err)
	}
}
