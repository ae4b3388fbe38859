package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/pulsehq/pulse/access"
	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/ratelimit"
)

func postPlausible(r http.Handler, body string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/api/event", strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", chromeUA)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

// TestPlausibleEvent: both key forms of Plausible's Events API become the
// Pulse events their fields say, one per site of the domain list.
func TestPlausibleEvent(t *testing.T) {
	type want struct {
		site, typ, url, ref, path string
		props                     map[string]any
	}
	tests := []struct {
		name string
		body string
		want []want
	}{
		{"full keys", `{"name":"pageview","url":"https://demo/pricing?x=1","domain":"demo","referrer":"https://news.example/a","props":{"plan":"pro","price":49,"trial":true}}`,
			[]want{{"demo", "pageview", "https://demo/pricing?x=1", "https://news.example/a", "/pricing", map[string]any{"plan": "pro", "price": 49.0, "trial": true}}}},
		{"short keys", `{"n":"Signup","u":"https://demo/","d":"demo","r":null,"p":{"plan":"free"},"v":36}`,
			[]want{{"demo", "Signup", "https://demo/", "", "/", map[string]any{"plan": "free"}}}},
		{"stringified meta", `{"n":"Outbound Link: Click","u":"https://demo/a","d":"demo","m":"{\"url\":\"https://x.test/\",\"blank\":\"  \",\"none\":null}"}`,
			[]want{{"demo", "Outbound Link: Click", "https://demo/a", "", "/a", map[string]any{"url": "https://x.test/"}}}},
		{"integer name", `{"n":404,"u":"https://demo/missing","d":"demo"}`,
			[]want{{"demo", "404", "https://demo/missing", "", "/missing", nil}}},
		{"multi-domain, www and case", `{"n":"pageview","u":"https://demo/","d":" demo , www.Shop,demo"}`,
			[]want{{"demo", "pageview", "https://demo/", "", "/", nil}, {"shop", "pageview", "https://demo/", "", "/", nil}}},
		{"domain from url", `{"n":"pageview","u":"https://www.shop/x"}`,
			[]want{{"shop", "pageview", "https://www.shop/x", "", "/x", nil}}},
		{"revenue", `{"n":"Purchase","u":"https://demo/buy","d":"demo","$":{"amount":"15.99","currency":"USD"},"p":{"sku":"a1"}}`,
			[]want{{"demo", "Purchase", "https://demo/buy", "", "/buy", map[string]any{"sku": "a1", "revenue_amount": 15.99, "revenue_currency": "USD"}}}},
		{"revenue full key, string", `{"name":"Purchase","url":"https://demo/","domain":"demo","revenue":"{\"amount\":3,\"currency\":\"EUR\"}"}`,
			[]want{{"demo", "Purchase", "https://demo/", "", "/", map[string]any{"revenue_amount": 3.0, "revenue_currency": "EUR"}}}},
		{"engagement", `{"n":"engagement","u":"https://demo/a","d":"demo","sd":140,"e":"5230","p":{"plan":"pro"}}`,
			[]want{{"demo", "engagement", "https://demo/a", "", "/a", map[string]any{"plan": "pro", "scroll_depth": 100.0, "engaged_ms": 5230.0}}}},
		{"non-interactive", `{"n":"autoplay","u":"https://demo/","d":"demo","i":false}`,
			[]want{{"demo", "autoplay", "https://demo/", "", "/", map[string]any{"interactive": false}}}},
		{"hash mode", `{"n":"pageview","u":"https://demo/app#/settings","d":"demo","h":1}`,
			[]want{{"demo", "pageview", "https://demo/app#/settings", "", "/app#/settings", nil}}},
		{"referrer cut to 2000 bytes", `{"n":"pageview","u":"https://demo/","d":"demo","r":"https://r.test/` + strings.Repeat("é", 1000) + `"}`,
			[]want{{"demo", "pageview", "https://demo/", "", "/", nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &memPub{}
			r, _ := newServer(t, pub, Config{AllowedSites: []string{"demo", "shop"}})
			w := postPlausible(r, tt.body, nil)
			if w.Code != http.StatusAccepted || w.Body.String() != "ok" {
				t.Fatalf("status %d body %q, want 202 ok", w.Code, w.Body)
			}
			if d := w.Header().Get("X-Plausible-Dropped"); d != "" {
				t.Errorf("X-Plausible-Dropped %q on a whole accept", d)
			}
			evs := pub.events(t)
			if len(evs) != len(tt.want) {
				t.Fatalf("published %d events, want %d", len(evs), len(tt.want))
			}
			ids := map[string]bool{}
			for i, e := range evs {
				wt := tt.want[i]
				if strings.HasPrefix(tt.name, "referrer") {
					if len(e.Ref) > 2000 || !strings.HasPrefix(e.Ref, "https://r.test/é") || !utf8Valid(e.Ref) {
						t.Errorf("referrer of %d bytes, want cut to at most 2000 at a character boundary", len(e.Ref))
					}
					e.Ref = ""
				}
				got := want{e.Site, e.Type, e.URL, e.Ref, e.Path, e.Props}
				if !reflect.DeepEqual(got, wt) {
					t.Errorf("event %d:\n got %+v\nwant %+v", i, got, wt)
				}
				if e.TS != testNow.UnixMilli() || e.RT != e.TS || e.Device != "desktop" {
					t.Errorf("event %d: ts %d rt %d device %q, want receive time and the request's User-Agent", i, e.TS, e.RT, e.Device)
				}
				if ids[e.ID] || len(e.ID) < 16 {
					t.Errorf("event %d: id %q repeated or short", i, e.ID)
				}
				ids[e.ID] = true
			}
		})
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// TestPlausibleRetryIsNewEvent: Plausible's senders keep no id, so the
// same body twice is two events (different ids), as in Plausible.
func TestPlausibleRetryIsNewEvent(t *testing.T) {
	pub := &memPub{}
	r, _ := newServer(t, pub, Config{})
	body := `{"n":"pageview","u":"https://demo/","d":"demo"}`
	for i := 0; i < 2; i++ {
		if w := postPlausible(r, body, nil); w.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	evs := pub.events(t)
	if len(evs) != 2 || evs[0].ID == evs[1].ID {
		t.Fatalf("two posts gave %d events (ids equal: %v), want 2 with their own ids", len(evs), len(evs) == 2 && evs[0].ID == evs[1].ID)
	}
}

// TestPlausibleErrors: refusals are Plausible's 400 {"errors":{field:[msg]}},
// each naming the bound, and counted.
func TestPlausibleErrors(t *testing.T) {
	manyProps := func(n int) string {
		var kv []string
		for i := 0; i < n; i++ {
			kv = append(kv, `"k`+strings.Repeat("x", i)+`":"v"`)
		}
		return "{" + strings.Join(kv, ",") + "}"
	}
	tests := []struct {
		name, body, field, msg, reason string
	}{
		{"not json", `n=pageview`, "request", "Unable to parse request body as json", "json"},
		{"array", `[{"n":"pageview"}]`, "request", "Unable to parse", "json"},
		{"no name", `{"u":"https://demo/","d":"demo"}`, "event_name", "can't be blank", "type"},
		{"name too long", `{"n":"` + strings.Repeat("x", 121) + `","u":"https://demo/","d":"demo"}`, "event_name", "1 to 120 bytes", "type"},
		{"name control", `{"n":"a\u001fb","u":"https://demo/","d":"demo"}`, "event_name", "without control characters", "type"},
		{"name float", `{"n":1.5,"u":"https://demo/","d":"demo"}`, "event_name", "a string or an integer", "type"},
		{"no url", `{"n":"pageview","d":"demo"}`, "url", "is required", "url"},
		{"blank url", `{"n":"pageview","u":" ","d":"demo"}`, "url", "can't be blank", "url"},
		{"data url", `{"n":"pageview","u":"data:text/html,hi","d":"demo"}`, "url", "scheme is not allowed", "url"},
		{"url too long", `{"n":"pageview","u":"https://demo/` + strings.Repeat("a", 2000) + `","d":"demo"}`, "url", "longer than 2000 bytes", "url"},
		{"blank domain", `{"n":"pageview","u":"https://demo/","d":" "}`, "domain", "can't be blank", "site"},
		{"bad domain", `{"n":"pageview","u":"https://demo/","d":"a b"}`, "domain", "is not a site name", "site"},
		{"too many domains", `{"n":"pageview","u":"https://demo/","d":"a,b,c,d,e,f,g,h,i,j,k"}`, "domain", "more than 10 sites", "site"},
		{"props not object", `{"n":"pageview","u":"https://demo/","d":"demo","p":[1]}`, "props", "must be an object", "props"},
		{"nested prop", `{"n":"pageview","u":"https://demo/","d":"demo","p":{"a":{"b":1}}}`, "props", `"a": must be a string, number or bool`, "props"},
		{"31 props", `{"n":"pageview","u":"https://demo/","d":"demo","p":` + manyProps(31) + `}`, "props", "more than 30 keys", "props"},
		{"prop key over Pulse's bound", `{"n":"pageview","u":"https://demo/","d":"demo","p":{"` + strings.Repeat("k", 65) + `":"v"}}`, "props", "key must be 1 to 64 bytes", "props"},
		{"prop value over Pulse's bound", `{"n":"pageview","u":"https://demo/","d":"demo","p":{"k":"` + strings.Repeat("v", 513) + `"}}`, "props", "longer than 512 bytes", "props"},
		{"bad revenue", `{"n":"Purchase","u":"https://demo/","d":"demo","$":{"amount":"lots","currency":"USD"}}`, "revenue", "amount must be a number", "revenue"},
		{"bad currency", `{"n":"Purchase","u":"https://demo/","d":"demo","$":{"amount":1,"currency":"usd"}}`, "revenue", "ISO 4217", "revenue"},
		{"empty engagement", `{"n":"engagement","u":"https://demo/","d":"demo","sd":"x"}`, "event_name", "at least one of 'sd' or 'e'", "engagement"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &memPub{}
			r, reg := newServer(t, pub, Config{})
			w := postPlausible(r, tt.body, nil)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status %d (%s), want 400", w.Code, w.Body)
			}
			var a struct {
				Errors map[string][]string `json:"errors"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
				t.Fatalf("answer %s: %v", w.Body, err)
			}
			if msgs := a.Errors[tt.field]; len(msgs) != 1 || !strings.Contains(msgs[0], tt.msg) {
				t.Errorf("errors %v, want %s: ...%s...", a.Errors, tt.field, tt.msg)
			}
			if n := len(pub.events(t)); n != 0 {
				t.Errorf("published %d events", n)
			}
			wantMetric(t, reg, "pulse_ingest_rejected_total", map[string]string{"reason": tt.reason}, 1)
		})
	}
}

// TestPlausibleAccess: /api/event keeps /v1/collect's rules. An event of a
// site the rules refuse is dropped the way Plausible drops one (202 ok,
// X-Plausible-Dropped, and here X-Pulse-Error saying why); a foreign
// origin, a bomb and a site over its rate get /v1/collect's statuses.
func TestPlausibleAccess(t *testing.T) {
	lim := ratelimit.New(ratelimit.Config{PerSite: rate.Limit(1), BurstSite: 3, ClientShare: -1, Now: func() time.Time { return testNow }})
	cfg := Config{
		AllowedSites: []string{"demo", "shop", "busy"},
		Origins:      access.NewOrigins([]string{"*.example.com"}),
		WriteKeys:    access.NewWriteKeys(map[string]string{"shop": shopKey}),
		Sites:        lim,
	}
	pub := &memPub{}
	r, reg := newServer(t, pub, cfg)
	pv := func(domain string) string {
		return `{"n":"pageview","u":"https://www.example.com/","d":"` + domain + `"}`
	}
	cases := []struct {
		name    string
		body    string
		hdr     map[string]string
		status  int
		dropped string
		errPart string // of X-Pulse-Error or the errors answer
	}{
		{"known site", pv("demo"), nil, 202, "", ""},
		{"unknown site dropped", pv("other"), nil, 202, "1", `site: "other" is not accepted`},
		{"one of two dropped", pv("demo,other"), nil, 202, "1", `"other"`},
		{"keyed site without key", pv("shop"), nil, 202, "1", `key: site "shop"`},
		{"keyed site with key", pv("shop"), map[string]string{"X-Pulse-Key": shopKey}, 202, "", ""},
		{"foreign origin", pv("demo"), map[string]string{"Origin": "https://evil.test"}, 403, "", "origin:"},
		{"over the site rate", pv("busy,busy2"), nil, 202, "1", ""},
	}
	for _, tt := range cases {
		w := postPlausible(r, tt.body, tt.hdr)
		if w.Code != tt.status {
			t.Fatalf("%s: status %d (%s), want %d", tt.name, w.Code, w.Body, tt.status)
		}
		if got := w.Header().Get("X-Plausible-Dropped"); got != tt.dropped {
			t.Errorf("%s: X-Plausible-Dropped %q, want %q", tt.name, got, tt.dropped)
		}
		if got := w.Header().Get("X-Pulse-Error") + w.Body.String(); !strings.Contains(got, tt.errPart) {
			t.Errorf("%s: error %q, want it to say %q", tt.name, got, tt.errPart)
		}
	}
	// busy has a burst of 3: its fourth event in a row is refused whole.
	for i := 0; i < 2; i++ {
		postPlausible(r, pv("busy"), nil)
	}
	if w := postPlausible(r, pv("busy"), nil); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" ||
		!strings.Contains(w.Body.String(), `"errors":{"request":["rate limit`) {
		t.Errorf("over the site rate: %d %q, want 429 with Retry-After and Plausible's error shape", w.Code, w.Body)
	}
	wantMetric(t, reg, "pulse_ingest_rejected_total", map[string]string{"reason": "site_not_allowed"}, 3)
	wantMetric(t, reg, "pulse_ingest_rejected_total", map[string]string{"reason": "write_key"}, 1)
	// demo x2 (one alone, one beside other), shop with its key, busy x3.
	if n := len(pub.events(t)); n != 6 {
		t.Errorf("published %d events, want 6", n)
	}
}

// TestPlausibleBodyBounds: the body bounds of /v1/collect hold, the raw
// bound of a gzip body included.
func TestPlausibleBodyBounds(t *testing.T) {
	r, _ := newServer(t, &memPub{}, Config{Limits: event.Limits{MaxBodyBytes: 4096}})
	big := `{"n":"pageview","u":"https://demo/","d":"demo","p":{"k":"` + strings.Repeat("v", 5000) + `"}}`
	if w := postPlausible(r, big, nil); w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), `"errors"`) {
		t.Errorf("large body: %d %s, want 413 in Plausible's shape", w.Code, w.Body)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write([]byte(strings.Repeat(" ", 1<<20)))
	zw.Close()
	req := httptest.NewRequest(http.MethodPost, "/api/event", &zb)
	req.Header.Set("Content-Encoding", "gzip")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("gzip bomb: %d %s, want 413", w.Code, w.Body)
	}
	if w := postPlausible(r, "", nil); w.Code != http.StatusBadRequest {
		t.Errorf("empty body: %d, want 400", w.Code)
	}
	// Under the default 1 MiB of /v1/collect, a body of /api/event (one
	// event) is bounded to 64 KiB.
	r, _ = newServer(t, &memPub{}, Config{})
	over := `{"n":"pageview","u":"https://demo/","d":"demo","x":"` + strings.Repeat("x", 64<<10) + `"}`
	if w := postPlausible(r, over, nil); w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "65536 bytes") {
		t.Errorf("body over 64 KiB: %d %s, want 413 naming the bound", w.Code, w.Body)
	}
}

// TestPlausiblePreflight: CORS as /v1/collect.
func TestPlausiblePreflight(t *testing.T) {
	r, _ := newServer(t, &memPub{}, Config{Origins: access.NewOrigins([]string{"*.example.com"})})
	for origin, want := range map[string]int{"https://www.example.com": 204, "https://evil.test": 403} {
		req := httptest.NewRequest(http.MethodOptions, "/api/event", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("preflight from %s: %d, want %d", origin, w.Code, want)
		}
	}
	w := postPlausible(r, `{"n":"pageview","u":"https://www.example.com/","d":"demo"}`, map[string]string{"Origin": "https://www.example.com"})
	if w.Header().Get("Access-Control-Allow-Origin") != "https://www.example.com" ||
		!strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), "X-Plausible-Dropped") {
		t.Errorf("CORS headers %v", w.Header())
	}
}
