package systemtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const (
	keyedKey   = "keyed-site-write-key-0123"
	shopReader = "shop-reader-token"
)

// hostileServer runs pulse with every access rule on: scoped read tokens,
// a write key, site and Origin allowlists, a low connection cap.
func hostileServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "read-tokens")
	keys := filepath.Join(dir, "write-keys")
	if err := os.WriteFile(tokens, []byte("# scoped\n"+shopReader+"=shop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keys, []byte("keyed="+keyedKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return newServer(t, "--read-tokens", tokens, "--write-keys", keys,
		"--allowed-sites", "demo,shop,keyed", "--ingest-origins", "*.example.com",
		"--rate-ip", "-1", "--max-conns-per-ip", "3")
}

// hostileCase is one request and the answer it must get.
type hostileCase struct {
	name   string
	method string // default POST /v1/collect
	path   string
	hdr    map[string]string
	body   []byte
	status int
	msg    string // in the answer's error, a reject's error, or X-Pulse-Error
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

func hostileCases() []hostileCase {
	props := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%d":%d`, i, i)
		}
		return b.String()
	}
	evWith := func(extra string) []byte {
		return []byte(`{"id":"h-1","site":"demo","type":"pageview","url":"https://example.com/bad"` + extra + `}`)
	}
	many := make([]string, 501)
	for i := range many {
		many[i] = fmt.Sprintf(`{"id":"m%d","site":"demo","type":"pageview"}`, i)
	}
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	return []hostileCase{
		{name: "malformed JSON", body: []byte(`{"id":"x","site":`), status: 400, msg: "invalid JSON at offset"},
		{name: "malformed array", body: []byte(`[{"id":"x","site":"demo","type":"t"},{`), status: 400, msg: "malformed body"},
		{name: "empty body", body: nil, status: 400, msg: "body holds no event"},
		{name: "not an object", body: []byte(`"pageview"`), status: 400, msg: "event must be a JSON object"},
		{name: "oversized body", body: bytes.Repeat([]byte(" "), 1<<20+1), status: 413, msg: "body larger than 1048576 bytes"},
		{name: "too many events", body: []byte("[" + strings.Join(many, ",") + "]"), status: 413, msg: "more than 500"},
		{name: "deeply nested unknown field", body: evWith(`,"x":` + deep), status: 400, msg: "JSON nested deeper than 8 levels"},
		{name: "nested props", body: evWith(`,"props":{"a":{"b":1}}`), status: 400, msg: "props.a: nested objects and arrays are not allowed"},
		{name: "invalid UTF-8", body: evWith(`,"uid":"a` + "\xff\xfe" + `"`), status: 400, msg: "uid: invalid UTF-8"},
		{name: "NUL escaped", body: evWith(`,"uid":"a\u0000b"`), status: 400, msg: "uid: NUL bytes are not allowed"},
		{name: "NUL raw", body: evWith(`,"uid":"a` + "\x00" + `b"`), status: 400, msg: "NUL is not allowed"},
		{name: "wrong type ts", body: evWith(`,"ts":"yesterday"`), status: 400, msg: "ts: must be"},
		{name: "wrong type site", body: []byte(`{"id":"h","site":5,"type":"t"}`), status: 400, msg: "site: must be"},
		{name: "huge ts", body: evWith(`,"ts":1e300`), status: 400, msg: "ts: "},
		{name: "huge prop number", body: evWith(`,"props":{"price":1e300}`), status: 400, msg: "number out of range"},
		{name: "many props", body: evWith(`,"props":{` + props(40) + `}`), status: 400, msg: "props: more than 32 keys"},
		{name: "null prop", body: evWith(`,"props":{"a":null}`), status: 400, msg: "props.a: null is not allowed"},
		{name: "long url", body: []byte(`{"id":"h","site":"demo","type":"pageview","url":"https://x/` + strings.Repeat("a", 3000) + `"}`), status: 400, msg: "url: longer than 2048 bytes"},
		{name: "long id", body: []byte(`{"id":"` + strings.Repeat("i", 65) + `","site":"demo","type":"t"}`), status: 400, msg: "id: required, 1 to 64 bytes"},
		{name: "bad site name", body: []byte(`{"id":"h","site":"Demo!","type":"t"}`), status: 400, msg: "site: must match"},
		{name: "long prop value", body: evWith(`,"props":{"a":"` + strings.Repeat("v", 600) + `"}`), status: 400, msg: "props.a: longer than 512 bytes"},
		{name: "huge header", hdr: map[string]string{"X-Junk": strings.Repeat("j", 200<<10)}, body: evWith(""), status: 431, msg: "Request Header Fields Too Large"},
		{name: "huge pixel query", method: http.MethodGet, path: "/v1/collect.gif?site=demo&type=t&id=q&cb=" + strings.Repeat("q", 200<<10), status: 431, msg: "Request Header Fields Too Large"},
		{name: "bad Content-Encoding", hdr: map[string]string{"Content-Encoding": "br"}, body: evWith(""), status: 415, msg: "Content-Encoding br not supported"},
		{name: "gzip header, plain body", hdr: map[string]string{"Content-Encoding": "gzip"}, body: evWith(""), status: 400, msg: "bad gzip body"},
		{name: "gzip bomb", hdr: map[string]string{"Content-Encoding": "gzip"}, body: gz(bytes.Repeat([]byte(" "), 4<<20)), status: 413, msg: "body larger than"},
		{name: "site not allowed", body: []byte(`{"id":"h","site":"other","type":"pageview"}`), status: 403, msg: `site: "other" is not accepted by this server`},
		{name: "keyed site without key", body: []byte(`{"id":"h","site":"keyed","type":"pageview"}`), status: 403, msg: `accepts events without an Origin only with its write key`},
		{name: "keyed site, wrong key", hdr: map[string]string{"X-Pulse-Key": "wrong-key-0123456789"}, body: []byte(`{"id":"h","site":"keyed","type":"pageview"}`), status: 403, msg: "wrong write key"},
		{name: "foreign Origin", hdr: map[string]string{"Origin": "https://evil.test"}, body: evWith(""), status: 403, msg: `origin: "https://evil.test" may not send events`},
		{name: "foreign preflight", method: http.MethodOptions, hdr: map[string]string{"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"}, status: 403, msg: "origin: "},
		{name: "pixel without site", method: http.MethodGet, path: "/v1/collect.gif?type=pageview&id=g1", status: 400, msg: "site: must match"},
		{name: "pixel bad ts", method: http.MethodGet, path: "/v1/collect.gif?site=demo&type=pageview&id=g2&ts=soon", status: 400, msg: "ts: must be an integer"},
		{name: "pixel invalid UTF-8", method: http.MethodGet, path: "/v1/collect.gif?site=demo&type=pageview&id=g3&url=%FF", status: 400, msg: "url: invalid UTF-8"},
		{name: "pixel NUL", method: http.MethodGet, path: "/v1/collect.gif?site=demo&type=pageview&id=g4&p.a=%00", status: 400, msg: "props.a: NUL"},
		{name: "pixel foreign page", method: http.MethodGet, path: "/v1/collect.gif?site=demo&type=pageview&id=g5", hdr: map[string]string{"Referer": "https://evil.test/x"}, status: 403, msg: "origin: "},
		{name: "pixel of a keyed site, no page", method: http.MethodGet, path: "/v1/collect.gif?site=keyed&type=pageview&id=g6", status: 403, msg: `key: site "keyed" accepts events without an Origin only with its write key`},
		{name: "pixel of a site not allowed", method: http.MethodGet, path: "/v1/collect.gif?site=other&type=pageview&id=g7", status: 403, msg: `site: "other" is not accepted`},
		{name: "query without token", method: http.MethodGet, path: "/v1/query?site=demo&metric=pageviews", status: 401, msg: "token: missing or invalid read token"},
		{name: "query bad token", method: http.MethodGet, path: "/v1/query?site=demo&metric=pageviews&token=nope", status: 401, msg: "token: missing or invalid read token"},
		{name: "query cross-site token", method: http.MethodGet, path: "/v1/query?site=demo&metric=pageviews", hdr: map[string]string{"Authorization": "Bearer " + shopReader}, status: 403, msg: `token: this read token does not grant site "demo"`},
		{name: "top cross-site token", method: http.MethodGet, path: "/v1/top?site=demo&metric=pageviews&dim=path&token=" + shopReader, status: 403, msg: "does not grant site"},
		{name: "query bad parameter", method: http.MethodGet, path: "/v1/query?site=demo&metric=pageviews&from=soon&token=" + readToken, status: 400, msg: "from: "},
		{name: "websocket bad token", method: http.MethodGet, path: "/v1/ws?token=nope", status: 401, msg: "invalid read token"},
	}
}

// do sends one request and returns its status, the events it accepted and
// the messages of its answer.
func (s *server) do(ctx context.Context, tc hostileCase) (status, accepted int, msgs []string, err error) {
	method, path := tc.method, tc.path
	if method == "" {
		method = http.MethodPost
	}
	if path == "" {
		path = "/v1/collect"
	}
	req, err := http.NewRequestWithContext(ctx, method, s.url(path), bytes.NewReader(tc.body))
	if err != nil {
		return 0, 0, nil, err
	}
	req.Header.Set("Content-Type", "text/plain")
	for k, v := range tc.hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	msgs = []string{resp.Header.Get("X-Pulse-Error")}
	var a struct {
		Accepted int    `json:"accepted"`
		Error    string `json:"error"`
		Rejected []struct {
			Error string `json:"error"`
		} `json:"rejected"`
	}
	if json.Unmarshal(b, &a) == nil {
		msgs = append(msgs, a.Error)
		for _, r := range a.Rejected {
			msgs = append(msgs, r.Error)
		}
	} else {
		msgs = append(msgs, string(b))
	}
	return resp.StatusCode, a.Accepted, msgs, nil
}

// pageviews returns the pageviews of site over the last hour.
func (s *server) pageviews(ctx context.Context, site string) (int64, error) {
	var res queryResult
	q := url.Values{"site": {site}, "metric": {"pageviews"}, "from": {"-1h"}, "step": {"1m"}}
	if err := s.get(ctx, "/v1/query", q, &res); err != nil {
		return 0, err
	}
	var n int64
	for _, sr := range res.Series {
		for _, p := range sr.Points {
			n += int64(p[1])
		}
	}
	return n, nil
}

// waitPageviews polls until site has want pageviews; the deadline only
// bounds a hung test.
func (s *server) waitPageviews(t *testing.T, ctx context.Context, site string, want int64) {
	t.Helper()
	var got int64
	var err error
	for range 600 {
		if got, err = s.pageviews(ctx, site); err == nil && got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("site %s: %d pageviews (err %v), want %d", site, got, err, want)
}

// sendGood posts n valid pageviews of site with ids prefix-i.
func (s *server) sendGood(t *testing.T, ctx context.Context, site, prefix string, n int, hdr map[string]string) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"id":"%s-%d","site":"%s","type":"pageview","url":"https://www.example.com/good"}`+"\n", prefix, i, site)
	}
	status, accepted, msgs, err := s.do(ctx, hostileCase{body: []byte(b.String()), hdr: hdr})
	if err != nil || status != http.StatusAccepted || accepted != n {
		t.Fatalf("good events of %s: %d, %d accepted, %q, %v", site, status, accepted, msgs, err)
	}
}

// TestHostileRequests sends the table of hostile requests to the real
// binary: each gets its 4xx and a message naming what failed; afterwards
// the server still serves, and the events accepted before, and after, are
// counted exactly once (nothing of the table counted).
func TestHostileRequests(t *testing.T) {
	s := hostileServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	s.sendGood(t, ctx, "demo", "before", 20, nil)
	s.sendGood(t, ctx, "shop", "before", 5, map[string]string{"Origin": "https://shop.example.com"})
	s.sendGood(t, ctx, "keyed", "before", 7, map[string]string{"X-Pulse-Key": keyedKey})
	s.waitPageviews(t, ctx, "demo", 20)
	s.waitPageviews(t, ctx, "shop", 5)
	s.waitPageviews(t, ctx, "keyed", 7)

	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			status, accepted, msgs, err := s.do(ctx, tc)
			if err != nil {
				t.Fatal(err)
			}
			if accepted != 0 {
				t.Fatalf("%d events accepted", accepted)
			}
			if status != tc.status {
				t.Fatalf("status %d, want %d: %q", status, tc.status, msgs)
			}
			for _, m := range msgs {
				if strings.Contains(m, tc.msg) {
					return
				}
			}
			t.Fatalf("no message contains %q: %q", tc.msg, msgs)
		})
	}

	t.Run("scoped token reads its own site", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url("/v1/query?site=shop&metric=pageviews&from=-1h&step=1m"), nil)
		req.Header.Set("Authorization", "Bearer "+shopReader)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})

	// Still serving, and exact: nothing of the table was counted.
	resp, err := http.Get(s.url("/healthz"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after the table: %v %v", resp, err)
	}
	resp.Body.Close()
	s.sendGood(t, ctx, "demo", "after", 10, nil)
	s.waitPageviews(t, ctx, "demo", 30)
	s.waitPageviews(t, ctx, "shop", 5)
	s.waitPageviews(t, ctx, "keyed", 7)
}

// TestHostileWebSocket: over the real binary, a site-scoped token gets
// "forbidden" for another site's subscription and its own site's
// snapshot on the same connection; a message over the size limit closes
// with 1009; a flood of messages closes with 1008; connections over the
// per-IP cap get 429.
func TestHostileWebSocket(t *testing.T) {
	s := hostileServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s.sendGood(t, ctx, "shop", "ws", 3, map[string]string{"Origin": "https://shop.example.com"})
	s.waitPageviews(t, ctx, "shop", 3)
	wsURL := "ws://" + s.addr + "/v1/ws?token="
	dial := func(tok string) *websocket.Conn {
		t.Helper()
		c, _, err := websocket.Dial(ctx, wsURL+tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadLimit(-1)
		t.Cleanup(func() { _ = c.CloseNow() })
		return c
	}
	send := func(c *websocket.Conn, v any) error {
		b, _ := json.Marshal(v)
		return c.Write(ctx, websocket.MessageText, b)
	}
	sub := func(id, site string) map[string]any {
		return map[string]any{"op": "subscribe", "id": id, "site": site, "metric": "pageviews", "step": "1m", "window": "1h"}
	}
	closeCode := func(c *websocket.Conn) websocket.StatusCode {
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return websocket.CloseStatus(err)
			}
		}
	}

	t.Run("cross-site subscribe", func(t *testing.T) {
		c := dial(shopReader)
		if err := send(c, sub("a", "demo")); err != nil {
			t.Fatal(err)
		}
		if m := read(ctx, t, c); m.Op != "error" || m.ID != "a" || m.Code != "forbidden" || !strings.Contains(m.Message, `does not grant site "demo"`) {
			t.Fatalf("got %+v, want a forbidden error for a", m)
		}
		if err := send(c, sub("b", "shop")); err != nil {
			t.Fatal(err)
		}
		m := read(ctx, t, c)
		var total float64
		for _, sr := range m.Series {
			for _, p := range sr.Points {
				total += p[1]
			}
		}
		if m.Op != "snapshot" || m.ID != "b" || total != 3 {
			t.Fatalf("got %+v (total %v), want b's snapshot of 3 pageviews", m, total)
		}
		_ = c.Close(websocket.StatusNormalClosure, "")
	})
	t.Run("message too big", func(t *testing.T) {
		// Authenticated by the URL: its messages may be 73,728 bytes (a
		// live query's body is up to 64 KiB); an anonymous connection's
		// 4,096 (push.TestMessageLimitAfterAuth).
		c := dial(readToken)
		_ = send(c, map[string]string{"op": "auth", "token": strings.Repeat("x", 80_000)})
		if code := closeCode(c); code != websocket.StatusMessageTooBig {
			t.Fatalf("close code %d, want 1009", code)
		}
	})
	t.Run("message flood", func(t *testing.T) {
		c := dial(readToken)
		for i := 0; i < 1000; i++ {
			if send(c, map[string]string{"op": "unsubscribe", "id": "nope"}) != nil {
				break // closed by the server
			}
		}
		if code := closeCode(c); code != websocket.StatusPolicyViolation {
			t.Fatalf("close code %d, want 1008", code)
		}
	})
	t.Run("connections per IP", func(t *testing.T) {
		var open []*websocket.Conn
		// Connections closed by the subtests above release their slots on
		// the server's own time: dial until refused.
		for range 20 {
			c, resp, err := websocket.Dial(ctx, wsURL+readToken, nil)
			if err != nil {
				if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
					t.Fatalf("dial: %v %v, want 429", err, resp)
				}
				if len(open) > 3 {
					t.Fatalf("%d connections admitted, cap 3", len(open))
				}
				return
			}
			open = append(open, c)
			t.Cleanup(func() { _ = c.CloseNow() })
		}
		t.Fatal("no connection refused")
	})
}

// TestSlowloris: a client that never finishes its request headers is
// disconnected by the server (ReadHeaderTimeout) while others are served.
func TestSlowloris(t *testing.T) {
	s := newServer(t)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /v1/collect HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.url("/healthz"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz beside the slow client: %v %v", resp, err)
	}
	resp.Body.Close()
	// The deadline only bounds a hung test; the server's is 5s.
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept a connection with unfinished headers open for 30s")
	}
}
