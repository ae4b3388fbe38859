package push

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

type tokenSet map[string]bool

func (s tokenSet) Read(tok string) bool { return s[tok] }

// closeCode reads until the connection closes and returns its close code.
func closeCode(t *testing.T, ws *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func TestAccess(t *testing.T) {
	e := newEnv(t)
	_, ts := e.hub(Config{Tokens: tokenSet{"good": true}, AllowedOrigins: []string{"*.example.com", "https://dash.test"}})
	host := strings.TrimPrefix(ts.URL, "http://")
	cases := []struct {
		name   string
		query  string
		origin string
		status int // HTTP status of a refused upgrade; 0 when it upgrades
	}{
		{name: "query token", query: "?token=good"},
		{name: "wrong query token", query: "?token=bad", status: http.StatusUnauthorized},
		{name: "same host origin", query: "?token=good", origin: "http://" + host},
		{name: "allowed origin pattern", query: "?token=good", origin: "https://app.example.com"},
		{name: "allowed scheme origin", query: "?token=good", origin: "https://dash.test"},
		{name: "scheme must match", query: "?token=good", origin: "http://dash.test", status: http.StatusForbidden},
		{name: "foreign origin", query: "?token=good", origin: "https://evil.test", status: http.StatusForbidden},
		{name: "foreign origin before token", query: "?token=bad", origin: "https://evil.test", status: http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := http.Header{}
			if c.origin != "" {
				hdr.Set("Origin", c.origin)
			}
			ws, resp, err := dial(t, ts, c.query, hdr)
			if c.status != 0 {
				if err == nil || resp == nil || resp.StatusCode != c.status {
					t.Fatalf("dial: err %v, resp %v; want HTTP %d", err, resp, c.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cl := &client{t: t, ws: ws, subs: map[string]*view{}}
			cl.subscribe("s", "10s", "", nil)
			cl.until(0, "s")
		})
	}

	t.Run("auth message", func(t *testing.T) {
		ws, _, err := dial(t, ts, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		cl := &client{t: t, ws: ws, subs: map[string]*view{}}
		cl.send(map[string]string{"op": "auth", "token": "good"})
		cl.subscribe("s", "10s", "", nil)
		cl.until(0, "s")
	})
	for _, c := range []struct {
		name string
		msg  map[string]string
	}{
		{"wrong auth message", map[string]string{"op": "auth", "token": "bad"}},
		{"subscribe before auth", map[string]string{"op": "unsubscribe", "id": "x"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ws, _, err := dial(t, ts, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			cl := &client{t: t, ws: ws, subs: map[string]*view{}}
			cl.send(c.msg)
			if code := closeCode(t, ws); code != websocket.StatusPolicyViolation {
				t.Fatalf("close code %d, want 1008", code)
			}
		})
	}
}

func TestUnsubscribe(t *testing.T) {
	e := newEnv(t)
	h, ts := e.hub(Config{})
	now := time.Now().UnixMilli()
	e.apply(now, 1, "/a")
	c := newClient(t, ts)
	c.subscribe("a", "10s", "", nil)
	c.subscribe("b", "10s", "path", nil)
	c.until(e.head(), "a", "b")
	c.send(map[string]string{"op": "unsubscribe", "id": "a"})
	// A message on the same connection after the unsubscribe orders the
	// check: once its error arrives, the unsubscribe has been handled.
	c.send(map[string]string{"op": "unsubscribe", "id": "nope"})
	if m := c.expectError(); m.Code != CodeUnknownID || m.ID != "nope" {
		t.Fatalf("got %+v, want unknown_id for nope", m)
	}
	before := c.subs["a"].seq
	for range 5 {
		e.apply(now, 1, "/a")
	}
	c.until(e.head(), "b")
	if got := c.subs["a"].seq; got != before {
		t.Fatalf("unsubscribed a still got deltas up to %d", got)
	}
	if v := value(h.m.subscriptions); v != 1 {
		t.Fatalf("subscriptions gauge %v, want 1", v)
	}
	if v := value(h.m.topics); v != 1 {
		t.Fatalf("topics gauge %v, want 1", v)
	}
}

func TestLimits(t *testing.T) {
	e := newEnv(t)
	_, ts := e.hub(Config{MaxSubsPerConn: 2, MaxMessageBytes: 512, MaxAuthedMessageBytes: 512})
	c := newClient(t, ts)
	c.subscribe("a", "10s", "", nil)
	c.subscribe("b", "1m", "", nil)
	c.until(0, "a", "b")
	cases := []struct {
		name string
		msg  map[string]any
		code string
	}{
		{"too many", map[string]any{"op": "subscribe", "id": "c", "site": "demo", "metric": "pageviews", "step": "10s", "window": "15m"}, CodeLimit},
		{"duplicate id", map[string]any{"op": "subscribe", "id": "a", "site": "demo", "metric": "pageviews", "step": "10s", "window": "15m"}, CodeDuplicateID},
		{"bad message", map[string]any{"op": "subscribe", "id": "c"}, CodeBadMessage},
		{"unknown op", map[string]any{"op": "publish"}, CodeBadMessage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.send(tc.msg)
			if m := c.expectError(); m.Code != tc.code || m.Message == "" {
				t.Fatalf("got %+v, want code %s", m, tc.code)
			}
		})
	}
	c.send(map[string]string{"op": "unsubscribe", "id": "b"})
	queries := []struct {
		name string
		msg  map[string]any
	}{
		{"unknown metric", map[string]any{"metric": "nope"}},
		{"unknown step", map[string]any{"step": "7s"}},
		{"unknown dim", map[string]any{"group_by": []string{"color"}}},
		{"unique by dim", map[string]any{"metric": "visitors", "group_by": []string{"path"}}},
		{"window past retention", map[string]any{"window": "7h"}},
	}
	for _, q := range queries {
		t.Run(q.name, func(t *testing.T) {
			m := map[string]any{"op": "subscribe", "id": "q", "site": "demo", "metric": "pageviews", "step": "10s", "window": "15m"}
			for k, v := range q.msg {
				m[k] = v
			}
			c.send(m)
			if got := c.expectError(); got.Code != CodeBadQuery || got.ID != "q" {
				t.Fatalf("got %+v, want bad_query for q", got)
			}
		})
	}
	t.Run("message too big", func(t *testing.T) {
		c.send(map[string]string{"op": "auth", "token": strings.Repeat("x", 600)})
		if code := closeCode(t, c.ws); code != websocket.StatusMessageTooBig {
			t.Fatalf("close code %d, want 1009", code)
		}
	})
}

// TestShutdown: ending Run closes every connection with 1001 and returns.
func TestShutdown(t *testing.T) {
	e := newEnv(t)
	h := New(e.src, Config{Catalog: e.cat})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	ts := httptest.NewServer(h)
	defer ts.Close()
	waitRunning(t, h)
	ws, _, err := dial(t, ts, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, ws: ws, subs: map[string]*view{}}
	c.subscribe("s", "10s", "", nil)
	c.until(0, "s")
	cancel()
	if code := closeCode(t, c.ws); code != websocket.StatusGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := value(h.m.connections); v != 0 {
		t.Fatalf("connections gauge %v after shutdown", v)
	}
}

// TestIdleTimeout: a client that answers no ping is closed with 4000. The
// client is a raw TCP connection that performs the upgrade and then never
// answers, which a WebSocket library would not let us do.
func TestIdleTimeout(t *testing.T) {
	e := newEnv(t)
	_, ts := e.hub(Config{PingEvery: 20 * time.Millisecond, IdleTimeout: 50 * time.Millisecond})
	nc, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	for {
		var hdr [2]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		payload := make([]byte, hdr[1]&0x7f) // control frames are short and unmasked
		if _, err := io.ReadFull(br, payload); err != nil {
			t.Fatal(err)
		}
		if hdr[0]&0x0f == 0x8 {
			if code := binary.BigEndian.Uint16(payload); code != uint16(StatusIdleTimeout) {
				t.Fatalf("close code %d, want 4000", code)
			}
			return
		}
	}
}

// TestMessageLimitAfterAuth: an anonymous client is held to
// MaxMessageBytes (its auth message too), an authenticated one may send
// messages up to MaxAuthedMessageBytes, as long live queries need.
func TestMessageLimitAfterAuth(t *testing.T) {
	e := newEnv(t)
	_, ts := e.hub(Config{Tokens: tokenSet{"good": true}, MaxMessageBytes: 512, MaxAuthedMessageBytes: 8192})
	long := strings.Repeat("x", 2000)
	cases := []struct {
		name  string
		query string
		first map[string]any // sent first, to authenticate or not
		msg   map[string]any
		close websocket.StatusCode // 0: answered, not closed
	}{
		{"anonymous, a long auth", "", nil, map[string]any{"op": "auth", "token": long}, websocket.StatusMessageTooBig},
		{"authenticated by auth", "", map[string]any{"op": "auth", "token": "good"},
			map[string]any{"op": "unsubscribe", "id": long}, 0},
		{"authenticated by the URL", "?token=good", nil, map[string]any{"op": "unsubscribe", "id": long}, 0},
		{"authenticated, past its limit", "?token=good", nil, map[string]any{"op": "unsubscribe", "id": strings.Repeat(long, 5)}, websocket.StatusMessageTooBig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClientAt(t, ts, tc.query)
			if tc.first != nil {
				c.send(tc.first)
			}
			c.send(tc.msg)
			if tc.close != 0 {
				if code := closeCode(t, c.ws); code != tc.close {
					t.Fatalf("close code %d, want %d", code, tc.close)
				}
				return
			}
			// A long id is a bad message, answered: the connection read it.
			if m := c.expectError(); m.Code != CodeBadMessage {
				t.Fatalf("got %+v, want bad_message", m)
			}
		})
	}
}
