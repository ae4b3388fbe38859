package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/gif"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/stream"
)

// memPub is an in-memory stream: Publish stores a copy of the entries and
// returns, as a durable write would (ingest reuses the entries' memory
// once Publish has returned).
type memPub struct {
	mu      sync.Mutex
	entries []stream.Entry
}

func (p *memPub) Publish(_ context.Context, entries []stream.Entry) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range entries {
		p.entries = append(p.entries, stream.Entry{Key: e.Key, Data: bytes.Clone(e.Data)})
	}
	return nil
}

func (p *memPub) events(t *testing.T) []event.Event {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var evs []event.Event
	for _, en := range p.entries {
		e, err := event.Unmarshal(en.Data)
		if err != nil {
			t.Fatalf("record %s: %v", en.Data, err)
		}
		if en.Key != e.PartitionKey() {
			t.Errorf("entry key %q, event key %q", en.Key, e.PartitionKey())
		}
		evs = append(evs, e)
	}
	return evs
}

// blockPub holds every Publish until release is closed; only then are the
// entries durable.
type blockPub struct {
	started chan struct{} // one send per Publish call
	release chan struct{}
	memPub
}

func (p *blockPub) Publish(ctx context.Context, entries []stream.Entry) error {
	p.started <- struct{}{}
	select {
	case <-p.release:
		return p.memPub.Publish(ctx, entries)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failPub is a stream that is down.
type failPub struct{}

func (failPub) Publish(context.Context, []stream.Entry) error {
	return errors.New("stream: no shard reachable")
}

var (
	_ Publisher = (*memPub)(nil)
	_ Publisher = (*blockPub)(nil)
	_ Publisher = failPub{}
)

var testNow = time.UnixMilli(1764258000999)

const chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

func newServer(t testing.TB, pub Publisher, cfg Config) (*gin.Engine, *prometheus.Registry) {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	r := gin.New()
	New(pub, cfg).Register(r)
	return r, reg
}

func post(r http.Handler, body, contentType string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/collect", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", chromeUA)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

func ev(id string) string {
	return `{"id":"` + id + `","site":"demo","type":"click"}`
}

func decodeAnswer(t *testing.T, w *httptest.ResponseRecorder) answer {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	var a answer
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("answer: %v", err)
	}
	return a
}

func TestCollect(t *testing.T) {
	many := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = ev(fmt.Sprint("e", i))
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	props := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%d":%d`, i, i)
		}
		return `{"id":"p","site":"demo","type":"t","props":{` + b.String() + `}}`
	}
	tests := []struct {
		name        string
		body        string
		contentType string
		status      int
		accepted    int
		rejected    map[int]string // index -> substring of its error
		errSub      string         // substring of "error"
	}{
		{"single", `{"id":"01JDX6T8Q5","site":"demo","type":"pageview","ts":1764258000123,"url":"https://example.com/pricing","props":{"plan":"pro","price":49}}`, "application/json", 202, 1, nil, ""},
		{"array", "[" + ev("a") + "," + ev("b") + "," + ev("c") + "]", "application/json", 202, 3, nil, ""},
		{"ndjson", ev("a") + "\n" + ev("b") + "\n", "application/x-ndjson", 202, 2, nil, ""},
		{"text/plain from sendBeacon", "[" + ev("a") + "]", "text/plain;charset=UTF-8", 202, 1, nil, ""},
		{"no content type", ev("a"), "", 202, 1, nil, ""},
		{"mixed lines", ev("a") + "\n{oops\n" + ev("c") + "\n" + `{"id":"d","site":"Demo","type":"t"}` + "\n" + ev("e"), "text/plain", 202, 3,
			map[int]string{1: "invalid JSON", 3: "site: must match [a-z0-9_.-]{1,64}"}, ""},
		{"mixed array", "[" + ev("a") + `,{"id":"b","site":"demo","type":"t","ts":"x"}]`, "", 202, 1, map[int]string{1: "ts: must be an integer"}, ""},
		{"empty", "", "", 400, 0, nil, "no event"},
		{"whitespace", "\n\n  \n", "", 400, 0, nil, "no event"},
		{"oversized", `{"id":"a","site":"demo","type":"t","x":"` + strings.Repeat("x", 1<<20) + `"}`, "", 413, 0, nil, "body larger than 1048576 bytes"},
		{"too many events", many(501), "", 413, 0, nil, "too many events"},
		{"max events", many(500), "", 202, 500, nil, ""},
		{"malformed array", "[" + ev("a") + ",", "", 400, 0, nil, "malformed body"},
		{"invalid UTF-8", "{\"id\":\"a\",\"site\":\"demo\",\"type\":\"t\",\"uid\":\"\xc3\x28\"}", "", 400, 0, map[int]string{0: "uid: invalid UTF-8"}, "no valid event"},
		{"escaped NUL", `{"id":"a\u0000","site":"demo","type":"t"}`, "", 400, 0, map[int]string{0: "id: NUL bytes are not allowed"}, "no valid event"},
		{"raw NUL", "{\"id\":\"a\x00\",\"site\":\"demo\",\"type\":\"t\"}", "", 400, 0, map[int]string{0: "control byte 0x0 in string"}, "no valid event"},
		{"deep nesting", `{"id":"a","site":"demo","type":"t","x":` + strings.Repeat("[", 50) + strings.Repeat("]", 50) + `}`, "", 400, 0, map[int]string{0: "nested deeper than 8 levels"}, "no valid event"},
		{"nested props", `{"id":"a","site":"demo","type":"t","props":{"a":{"b":1}}}`, "", 400, 0, map[int]string{0: "props.a: nested objects and arrays are not allowed"}, "no valid event"},
		{"wrong types", "[" + `{"id":1,"site":"demo","type":"t"},{"id":"b","site":"demo","type":"t","props":"x"},{"id":"c","site":"demo","type":"t","url":false}` + "]", "", 400, 0,
			map[int]string{0: "id: must be a string", 1: "props: must be an object", 2: "url: must be a string"}, "no valid event"},
		{"huge numbers", "[" + `{"id":"a","site":"demo","type":"t","props":{"n":1e300}},{"id":"b","site":"demo","type":"t","ts":123456789012345678901}` + "]", "", 400, 0,
			map[int]string{0: "props.n: number out of range", 1: "ts: out of range"}, "no valid event"},
		{"many props", props(33), "", 400, 0, map[int]string{0: "props: more than 32 keys"}, "no valid event"},
		{"max props", props(32), "", 202, 1, nil, ""},
		{"missing required", `{"id":"a"}`, "", 400, 0, map[int]string{0: "site: must match"}, "no valid event"},
		{"not an object", `"hello"`, "", 400, 0, map[int]string{0: "must be a JSON object"}, "no valid event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &memPub{}
			r, _ := newServer(t, pub, Config{})
			w := post(r, tt.body, tt.contentType)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin %q", got)
			}
			a := decodeAnswer(t, w)
			if a.Accepted != tt.accepted {
				t.Errorf("accepted %d, want %d", a.Accepted, tt.accepted)
			}
			if a.Rejected == nil {
				t.Error("rejected is null, want a list")
			}
			if len(a.Rejected) != len(tt.rejected) {
				t.Fatalf("rejected %+v, want %v", a.Rejected, tt.rejected)
			}
			for _, rj := range a.Rejected {
				if sub, ok := tt.rejected[rj.Index]; !ok || !strings.Contains(rj.Error, sub) {
					t.Errorf("rejected[%d] = %q, want %q", rj.Index, rj.Error, sub)
				}
			}
			if !strings.Contains(a.Error, tt.errSub) || (tt.errSub == "" && a.Error != "") {
				t.Errorf("error %q, want %q", a.Error, tt.errSub)
			}
			if got := len(pub.events(t)); got != tt.accepted {
				t.Errorf("%d events published, %d accepted", got, tt.accepted)
			}
		})
	}
}

func TestContentEncoding(t *testing.T) {
	gz := func(s string) string {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.String()
	}
	tests := []struct {
		name, encoding, body string
		status               int
	}{
		{"gzip", "gzip", gz("[" + ev("a") + "," + ev("b") + "]"), 202},
		{"identity", "identity", ev("a"), 202},
		{"gzip bomb", "gzip", gz(`{"id":"a","site":"demo","type":"t","x":"` + strings.Repeat("x", 2<<20) + `"}`), 413},
		{"not gzip", "gzip", ev("a"), 400},
		{"brotli", "br", "xx", 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &memPub{}
			r, _ := newServer(t, pub, Config{})
			req := httptest.NewRequest(http.MethodPost, "/v1/collect", strings.NewReader(tt.body))
			req.Header.Set("Content-Encoding", tt.encoding)
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			a := decodeAnswer(t, w)
			if (tt.status == 202) != (a.Error == "") || a.Accepted != len(pub.events(t)) {
				t.Errorf("answer %+v, %d published", a, len(pub.entries))
			}
		})
	}
}

func TestServerFields(t *testing.T) {
	pub := &memPub{}
	r, _ := newServer(t, pub, Config{})
	body := `{"id":"a","site":"demo","type":"pageview","url":"https://example.com/pricing?x=1","ref":"https://News.Example/item","rt":1,"bot":true,"device":"tablet","path":"/fake","extra":{"x":1}}` + "\n" +
		`{"id":"b","site":"demo","type":"click","ts":1764258000123,"props":{"target":"#buy"}}`
	if w := post(r, body, "text/plain"); w.Code != 202 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	evs := pub.events(t)
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	a, b := evs[0], evs[1]
	if a.RT != testNow.UnixMilli() || a.TS != a.RT || a.Path != "/pricing" || a.RefHost != "news.example" || a.Device != "desktop" || a.Bot {
		t.Errorf("event a: %+v", a)
	}
	if b.RT != testNow.UnixMilli() || b.TS != 1764258000123 || b.Path != "" || b.Props["target"] != "#buy" || b.Device != "desktop" {
		t.Errorf("event b: %+v", b)
	}
	// Unknown fields are not kept in the record.
	if bytes.Contains(pub.entries[0].Data, []byte("extra")) {
		t.Errorf("record keeps an unknown field: %s", pub.entries[0].Data)
	}
}

func TestBotFlag(t *testing.T) {
	pub := &memPub{}
	r, _ := newServer(t, pub, Config{})
	tests := []struct {
		ua, device string
		bot        bool
	}{
		{"", "server", false},
		{"curl/8.5.0", "server", false},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", true},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36", "bot", true},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodPost, "/v1/collect", strings.NewReader(ev("a")))
		req.Header.Set("User-Agent", tt.ua)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != 202 {
			t.Fatalf("status %d", w.Code)
		}
	}
	for i, e := range pub.events(t) {
		if e.Bot != tests[i].bot || e.Device != tests[i].device {
			t.Errorf("UA %q: bot=%v device=%q, want %v %q", tests[i].ua, e.Bot, e.Device, tests[i].bot, tests[i].device)
		}
	}
}

// A retry carries the same id, so it lands on the same partition whatever
// else changed, and the aggregator's dedup sees both.
func TestRetrySamePartitionKey(t *testing.T) {
	pub := &memPub{}
	now := testNow
	r, _ := newServer(t, pub, Config{Now: func() time.Time { now = now.Add(time.Second); return now }})
	first := `{"id":"01JDX6T8Q5","site":"demo","type":"click","url":"https://a/x"}`
	retry := `[{"id":"01JDX6T8Q5","site":"demo","type":"click","url":"https://a/x"}]`
	for _, body := range []string{first, retry, first} {
		if w := post(r, body, ""); w.Code != 202 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if len(pub.entries) != 3 {
		t.Fatalf("%d entries", len(pub.entries))
	}
	for _, en := range pub.entries {
		if en.Key != "demo/01JDX6T8Q5" {
			t.Errorf("key %q", en.Key)
		}
	}
}

func TestGIF(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		status int
		errSub string
	}{
		{"valid", "site=demo&type=pageview&id=g1&url=https%3A%2F%2Fexample.com%2Fa%3Fb&ref=https%3A%2F%2Fr.example%2F&uid=u1&ts=1764258000123&p.plan=pro&p.n=49&cb=123", 202, ""},
		{"no ts", "site=demo&type=pageview&id=g2", 202, ""},
		{"missing site", "type=pageview&id=g3", 400, "site: must match"},
		{"bad ts", "site=demo&type=pageview&id=g4&ts=soon", 400, "ts: must be an integer"},
		{"invalid utf8", "site=demo&type=pageview&id=g5&url=%FF", 400, "url: invalid UTF-8"},
		{"NUL", "site=demo&type=pageview&id=g6&p.k=a%00", 400, "props.k: NUL"},
		{"too many props", "site=demo&type=t&id=g7" + strings.Repeat("", 0) + func() string {
			var b strings.Builder
			for i := range 33 {
				fmt.Fprintf(&b, "&p.k%d=v", i)
			}
			return b.String()
		}(), 400, "props: more than 32 keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &memPub{}
			r, _ := newServer(t, pub, Config{})
			req := httptest.NewRequest(http.MethodGet, "/v1/collect.gif?"+tt.query, nil)
			req.Header.Set("User-Agent", chromeUA)
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tt.status, w.Header().Get("X-Pulse-Error"))
			}
			if ct := w.Header().Get("Content-Type"); ct != "image/gif" {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			if w.Header().Get("Access-Control-Allow-Origin") != "*" {
				t.Error("no CORS header")
			}
			img, err := gif.Decode(w.Body)
			if err != nil {
				t.Fatalf("gif: %v", err)
			}
			if b := img.Bounds(); b.Dx() != 1 || b.Dy() != 1 {
				t.Errorf("gif is %v", b)
			}
			if msg := w.Header().Get("X-Pulse-Error"); !strings.Contains(msg, tt.errSub) || (tt.errSub == "" && msg != "") {
				t.Errorf("X-Pulse-Error %q, want %q", msg, tt.errSub)
			}
			evs := pub.events(t)
			if tt.status != 202 {
				if len(evs) != 0 {
					t.Errorf("refused event published: %+v", evs)
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("%d events", len(evs))
			}
			e := evs[0]
			if e.RT != testNow.UnixMilli() || e.Device != "desktop" || e.Site != "demo" || e.Type != "pageview" {
				t.Errorf("event %+v", e)
			}
			if tt.name == "valid" {
				if e.TS != 1764258000123 || e.Path != "/a" || e.RefHost != "r.example" || e.UID != "u1" ||
					e.Props["plan"] != "pro" || e.Props["n"] != "49" || len(e.Props) != 2 {
					t.Errorf("event %+v", e)
				}
			}
		})
	}
}

func TestPreflight(t *testing.T) {
	r, _ := newServer(t, &memPub{}, Config{})
	req := httptest.NewRequest(http.MethodOptions, "/v1/collect", nil)
	req.Header.Set("Origin", "https://example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusNoContent {
		t.Fatalf("status %d", w.Code)
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "POST, GET, OPTIONS",
		"Access-Control-Allow-Headers": "content-type",
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if w.Header().Get("Access-Control-Allow-Credentials") != "" {
		t.Error("credentials allowed")
	}
}

// Under backpressure a request waits AdmitWait for room, then gets 503 with
// Retry-After, and its events are not published; the blocked request is not
// answered before its events are durable.
func TestOverload(t *testing.T) {
	pub := &blockPub{started: make(chan struct{}, 4), release: make(chan struct{})}
	r, reg := newServer(t, pub, Config{Limits: event.Limits{MaxEvents: 2}, MaxInFlight: 2, AdmitWait: 5 * time.Millisecond, RetryAfter: 1500 * time.Millisecond})

	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- post(r, "["+ev("a")+","+ev("b")+"]", "") }()
	<-pub.started // the first request holds all the room

	w := post(r, ev("c"), "")
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if got := w.Header().Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After %q, want 2", got)
	}
	if a := decodeAnswer(t, w); a.Accepted != 0 || !strings.Contains(a.Error, "overloaded") {
		t.Errorf("answer %+v", a)
	}
	select {
	case w := <-first:
		t.Fatalf("blocked request answered %d before its events were durable", w.Code)
	default:
	}
	wantMetric(t, reg, "pulse_ingest_inflight_events", nil, 2)

	close(pub.release)
	if w := <-first; w.Code != 202 {
		t.Fatalf("first request: %d %s", w.Code, w.Body)
	}
	var ids []string
	for _, e := range pub.events(t) {
		ids = append(ids, e.ID)
	}
	if strings.Join(ids, ",") != "a,b" {
		t.Errorf("published %v, want a,b only", ids)
	}
	// Room is back.
	if w := post(r, ev("d"), ""); w.Code != 202 {
		t.Errorf("after release: %d", w.Code)
	}
	wantMetric(t, reg, "pulse_ingest_overload_total", nil, 1)
	wantMetric(t, reg, "pulse_ingest_rejected_total", map[string]string{"reason": "overload"}, 1)
	wantMetric(t, reg, "pulse_ingest_requests_total", map[string]string{"code": "503"}, 1)
	wantMetric(t, reg, "pulse_ingest_events_total", map[string]string{"result": "accepted"}, 3)
	wantMetric(t, reg, "pulse_ingest_inflight_events", nil, 0)
}

func TestPublishFails(t *testing.T) {
	r, reg := newServer(t, failPub{}, Config{})
	w := post(r, "["+ev("a")+`,{"id":"b"}]`, "")
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d", w.Code)
	}
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q", got)
	}
	if a := decodeAnswer(t, w); a.Accepted != 0 || !strings.Contains(a.Error, "stream unavailable") {
		t.Errorf("answer %+v", a)
	}
	wantMetric(t, reg, "pulse_ingest_rejected_total", map[string]string{"reason": "unavailable"}, 1)
	wantMetric(t, reg, "pulse_ingest_rejected_total", map[string]string{"reason": "site"}, 1)
	wantMetric(t, reg, "pulse_ingest_events_total", map[string]string{"result": "rejected"}, 2)

	// The GIF answers the same status, with the pixel.
	req := httptest.NewRequest(http.MethodGet, "/v1/collect.gif?site=demo&type=t&id=x", nil)
	w = httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" || w.Header().Get("Content-Type") != "image/gif" {
		t.Errorf("gif: %d %v", w.Code, w.Header())
	}
}

func TestMetrics(t *testing.T) {
	r, reg := newServer(t, &memPub{}, Config{})
	post(r, "["+ev("a")+`,{"id":"b","site":"demo","type":"T\u0001"},{"id":"c","site":"demo","type":"t","props":{"x":[1]}}]`, "")
	post(r, "", "")
	wantMetric(t, reg, "pulse_ingest_events_total", map[string]string{"result": "accepted"}, 1)
	wantMetric(t, reg, "pulse_ingest_events_total", map[string]string{"result": "rejected"}, 2)
	wantMetric(t, reg, "pulse_ingest_rejected_total", map[string]string{"reason": "type"}, 1)
	wantMetric(t, reg, "pulse_ingest_rejected_total", map[string]string{"reason": "props"}, 1)
	wantMetric(t, reg, "pulse_ingest_rejected_total", map[string]string{"reason": "empty"}, 1)
	wantMetric(t, reg, "pulse_ingest_requests_total", map[string]string{"code": "202"}, 1)
	wantMetric(t, reg, "pulse_ingest_requests_total", map[string]string{"code": "400"}, 1)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "pulse_ingest_request_seconds" {
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != 2 {
				t.Errorf("request_seconds count %d, want 2", n)
			}
		}
	}
}

// wantMetric checks the value of the series of name with labels.
func wantMetric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string, want float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			var got float64
			switch {
			case m.Counter != nil:
				got = m.GetCounter().GetValue()
			case m.Gauge != nil:
				got = m.GetGauge().GetValue()
			}
			if got != want {
				t.Errorf("%s%v = %v, want %v", name, labels, got, want)
			}
			return
		}
	}
	if want != 0 {
		t.Errorf("%s%v missing, want %v", name, labels, want)
	}
}

// Every collect answer, accepted or refused, says the dedup window, and
// exposes it to cross-origin pages; without a window there is no header.
func TestDedupWindowHeader(t *testing.T) {
	tests := []struct {
		name   string
		window time.Duration
		body   string
		status int
		want   string
	}{
		{"accepted", 10 * time.Minute, "[" + ev("a") + "]", http.StatusAccepted, "600"},
		{"refused", 3 * time.Second, `[{"id":""}]`, http.StatusBadRequest, "3"},
		{"fraction of a second", 1500 * time.Millisecond, "[" + ev("b") + "]", http.StatusAccepted, "1.5"},
		{"no window", 0, "[" + ev("c") + "]", http.StatusAccepted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newServer(t, &memPub{}, Config{DedupWindow: tt.window})
			w := post(r, tt.body, "text/plain")
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if got := w.Header().Get("Pulse-Dedup-Window"); got != tt.want {
				t.Errorf("Pulse-Dedup-Window %q, want %q", got, tt.want)
			}
			if exp := w.Header().Get("Access-Control-Expose-Headers"); !strings.Contains(exp, "Pulse-Dedup-Window") {
				t.Errorf("Access-Control-Expose-Headers %q lacks Pulse-Dedup-Window", exp)
			}
		})
	}
}

// leftPub fails its first Publish as a Put whose caller went away does,
// keeping the entries it was given (the stream may still be writing them),
// and stores copies of the entries of every later one.
type leftPub struct {
	kept []stream.Entry
	memPub
}

func (p *leftPub) Publish(ctx context.Context, entries []stream.Entry) error {
	if p.kept == nil {
		p.kept = entries
		return errors.New("put: context canceled (some entries may have been stored)")
	}
	return p.memPub.Publish(ctx, entries)
}

// TestFailedPublishKeepsRecords checks that the records of a request whose
// publish failed are not reused for the next requests: the stream may
// still be reading them.
func TestFailedPublishKeepsRecords(t *testing.T) {
	pub := &leftPub{}
	r, _ := newServer(t, pub, Config{})
	if w := post(r, "["+ev("first1")+","+ev("first2")+"]", ""); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("first post: status %d", w.Code)
	}
	for i := range 5 {
		if w := post(r, "["+ev(fmt.Sprintf("later%d-overwriting", i))+","+ev("x")+"]", ""); w.Code != http.StatusAccepted {
			t.Fatalf("post %d: status %d: %s", i, w.Code, w.Body)
		}
	}
	for i, en := range pub.kept {
		e, err := event.Unmarshal(en.Data)
		if want := fmt.Sprintf("first%d", i+1); err != nil || e.ID != want || en.Key != "demo/"+want {
			t.Errorf("kept entry %d: key %q, record %s (%v), want event %s", i, en.Key, en.Data, err, want)
		}
	}
	if got := len(pub.events(t)); got != 10 {
		t.Errorf("%d events published after the failure, want 10", got)
	}
}
