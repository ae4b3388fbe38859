package systemtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/pulsehq/pulse/internal/redistest"
)

// specPath is docs/openapi.yaml of this tree.
func specPath(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "docs", "openapi.yaml")
}

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromFile(specPath(t))
	if err != nil {
		t.Fatalf("load docs/openapi.yaml: %v", err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("docs/openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// servedRoutes reads the routes a server logged at start (debug level):
// "METHOD /path" in gin's syntax.
func servedRoutes(t *testing.T, s *server) map[string]bool {
	t.Helper()
	f, err := os.Open(s.log.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct{ Msg, Method, Path string }
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "route" {
			out[l.Method+" "+l.Path] = true
		}
	}
	if len(out) == 0 {
		t.Fatal("the server logged no routes at debug level (cmd/pulse logRoutes)")
	}
	return out
}

// openAPIPath turns gin's /demo/*path, /x/:id and /tracker.:variant into
// /demo/{path}, /x/{id} and /tracker.{variant}.
func openAPIPath(ginPath string) string {
	segs := strings.Split(ginPath, "/")
	for i, s := range segs {
		if j := strings.IndexAny(s, ":*"); j >= 0 {
			segs[i] = s[:j] + "{" + s[j+1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

// TestOpenAPI checks docs/openapi.yaml against a running server (all roles,
// real redis-server): the spec is valid OpenAPI 3, every route the server
// registers is in the spec and every operation of the spec is registered,
// and the server's real answers to a table of requests validate against
// the spec's schemas, status codes and headers (kin-openapi openapi3filter).
// Requests the spec declares invalid (no token, bad site) must fail request
// validation, so the spec's constraints are checked too.
func TestOpenAPI(t *testing.T) {
	doc := loadSpec(t)
	rs := redistest.Start(t)
	// Access rules on, so that their refusals can be checked: a token
	// scoped to another site, a write key for one site, and an Origin
	// allowlist (the existing cases send no Origin, or an allowed one); one
	// WebSocket per address, so that a second one is refused.
	dir := t.TempDir()
	readTokens, writeKeys := filepath.Join(dir, "read-tokens"), filepath.Join(dir, "write-keys")
	if err := os.WriteFile(readTokens, []byte("# test\n"+scopedToken+"=othersite\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(writeKeys, []byte(keyedSite+"="+writeKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, "--redis", rs.URL(), "--log-level", "debug", "--rate-ip", "-1", "--rate-site", "-1",
		"--read-tokens", readTokens, "--write-keys", writeKeys, "--ingest-origins", "site.example", "--max-conns-per-ip", "1")

	t.Run("routes", func(t *testing.T) {
		served := servedRoutes(t, s)
		inSpec := map[string]bool{}
		for p, item := range doc.Paths.Map() {
			for m := range item.Operations() {
				inSpec[strings.ToUpper(m)+" "+p] = true
			}
		}
		var missing, extra []string
		specOf := map[string]bool{}
		for r := range served {
			method, path, _ := strings.Cut(r, " ")
			op := method + " " + openAPIPath(path)
			specOf[op] = true
			if !inSpec[op] {
				missing = append(missing, fmt.Sprintf("route %s %s is served but missing from docs/openapi.yaml: add paths.%s.%s",
					method, path, openAPIPath(path), strings.ToLower(method)))
			}
		}
		for op := range inSpec {
			switch {
			case !specOf[op]:
				extra = append(extra, fmt.Sprintf("docs/openapi.yaml describes %s, which the server (all roles) does not register", op))
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		for _, m := range append(missing, extra...) {
			t.Error(m)
		}
		t.Logf("%d routes served, %d operations in the spec", len(served), len(inSpec))
	})

	t.Run("responses", func(t *testing.T) {
		checkResponses(t, doc, s)
	})
}

func init() {
	// Bodies the validator must read but has no decoder for by default.
	openapi3filter.RegisterBodyDecoder("image/gif", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", openapi3filter.PlainBodyDecoder)
	for _, ct := range []string{"text/html", "text/javascript", "application/javascript", "text/css"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
}

// Credentials of the access cases of TestOpenAPI.
const (
	scopedToken = "oa-scoped-token-0123456789" // reads othersite only
	keyedSite   = "keyed"
	writeKey    = "oa-write-key-0123456789"
)

type apiCase struct {
	name    string
	method  string
	path    string        // with query
	pathFn  func() string // instead of path, for ids known only once earlier cases ran
	header  map[string]string
	body    string
	status  int
	invalid bool // the request breaks the spec on purpose (no token, bad site)
	// before runs before the request (to hold a WebSocket open).
	before func(t *testing.T)
	// then runs after the answer validated, with its body: to wait for a
	// job the case started, or keep an id for later cases.
	then func(t *testing.T, body []byte)
}

func checkResponses(t *testing.T, doc *openapi3.T, s *server) {
	doc.Servers = openapi3.Servers{{URL: "http://" + s.addr}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("router from spec: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	bearer := map[string]string{"Authorization": "Bearer " + readToken}
	sj := map[string]string{"Authorization": "Bearer " + readToken, "Content-Type": "application/json"}
	text := map[string]string{"Content-Type": "text/plain"}
	wsHeaders := map[string]string{"Upgrade": "websocket", "Connection": "Upgrade",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13", "Origin": "http://" + s.addr}
	admin := map[string]string{"Authorization": "Bearer " + adminToken}
	adminJSON := map[string]string{"Authorization": "Bearer " + adminToken, "Content-Type": "application/json"}
	var replayJob, verifyJob string
	// waitJob keeps the id of the job a case started in *id and polls it
	// until it is no longer running; it must end done.
	waitJob := func(id *string) func(*testing.T, []byte) {
		return func(t *testing.T, body []byte) {
			var j struct{ ID, State, Error string }
			if err := json.Unmarshal(body, &j); err != nil || j.ID == "" {
				t.Fatalf("job status %.300s: %v", body, err)
			}
			*id = j.ID
			for j.State == "running" {
				if ctx.Err() != nil {
					t.Fatalf("job %s still running", j.ID)
				}
				time.Sleep(50 * time.Millisecond)
				if err := adminGet(ctx, s, "/v1/admin/jobs/"+j.ID, &j); err != nil {
					t.Fatal(err)
				}
			}
			if j.State != "done" {
				t.Fatalf("job %s ended %s: %s", j.ID, j.State, j.Error)
			}
		}
	}
	// holdWS opens the one WebSocket this address may have, until the case
	// ends. The connection of an earlier case may not be released yet: a
	// 429 is retried.
	holdWS := func(t *testing.T) {
		for {
			c, resp, err := websocket.Dial(ctx, "ws://"+s.addr+"/v1/ws?token="+readToken,
				&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://" + s.addr}}})
			if err == nil {
				t.Cleanup(func() { c.CloseNow() })
				return
			}
			if resp == nil || resp.StatusCode != http.StatusTooManyRequests || ctx.Err() != nil {
				t.Fatalf("open a WebSocket: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	now := time.Now().UnixMilli()
	keyed := `{"id":"oa-k%d","site":"` + keyedSite + `","type":"pageview"}`
	big := strings.Repeat(`{"id":"big","site":"demo","type":"pageview","url":"https://e.com/`+strings.Repeat("x", 1000)+`"}`+"\n", 1100)
	cases := []apiCase{
		{name: "collect ndjson", method: "POST", path: "/v1/collect", header: text, status: 202,
			body: `{"id":"oa-1","site":"demo","type":"pageview","url":"https://e.com/a"}` + "\n" + `{"id":"oa-2","site":"demo","type":"click","props":{"target":"buy"}}`},
		{name: "collect json array, one bad", method: "POST", path: "/v1/collect", header: map[string]string{"Content-Type": "application/json"}, status: 202,
			body: `[{"id":"oa-3","site":"demo","type":"pageview"},{"id":"oa-4","site":"Bad","type":"pageview"}]`, invalid: true},
		{name: "collect json object", method: "POST", path: "/v1/collect", header: map[string]string{"Content-Type": "application/json"}, status: 202,
			body: `{"id":"oa-5","site":"demo","type":"signup","ts":1764258000123,"props":{"plan":"pro","price":49,"trial":true}}`},
		{name: "collect nothing valid", method: "POST", path: "/v1/collect", header: text, status: 400, body: `{"id":"x","type":"pageview"}`},
		{name: "collect empty", method: "POST", path: "/v1/collect", header: text, status: 400, body: ``, invalid: true},
		{name: "collect too large", method: "POST", path: "/v1/collect", header: text, status: 413, body: big},
		{name: "collect brotli", method: "POST", path: "/v1/collect", header: map[string]string{"Content-Type": "text/plain", "Content-Encoding": "br"}, status: 415, body: `x`},
		{name: "collect preflight", method: "OPTIONS", path: "/v1/collect", header: map[string]string{"Origin": "https://site.example", "Access-Control-Request-Method": "POST"}, status: 204},
		{name: "gif", method: "GET", path: "/v1/collect.gif?site=demo&type=pageview&id=oa-g1&url=https%3A%2F%2Fe.com%2Fg&p.plan=pro", status: 202},
		{name: "gif without site", method: "GET", path: "/v1/collect.gif?type=pageview&id=oa-g2", status: 400, invalid: true},
		{name: "gif preflight", method: "OPTIONS", path: "/v1/collect.gif", header: map[string]string{"Origin": "https://site.example"}, status: 204},
		{name: "plausible event", method: "POST", path: "/api/event", header: text, status: 202,
			body: `{"n":"Outbound Link: Click","u":"https://e.com/p","d":"demo","p":{"url":"https://x.test/"}}`},
		{name: "plausible event, a site dropped", method: "POST", path: "/api/event", header: map[string]string{"Content-Type": "application/json"}, status: 202,
			body: `{"name":"pageview","url":"https://e.com/","domain":"demo,` + keyedSite + `"}`},
		{name: "plausible event without url", method: "POST", path: "/api/event", header: text, status: 400, body: `{"n":"pageview","d":"demo"}`},
		{name: "plausible preflight", method: "OPTIONS", path: "/api/event", header: map[string]string{"Origin": "https://site.example", "Access-Control-Request-Method": "POST"}, status: 204},
		{name: "catalog", method: "GET", path: "/v1/metrics", header: bearer, status: 200},
		{name: "catalog without token", method: "GET", path: "/v1/metrics", status: 401, invalid: true},
		{name: "catalog bad token", method: "GET", path: "/v1/metrics?token=nope", status: 401, invalid: true},
		{name: "query", method: "GET", path: "/v1/query?site=demo&metric=events&from=-1h&step=1m", header: bearer, status: 200},
		{name: "query group_by, token in query", method: "GET", path: "/v1/query?site=demo&metric=pageviews&from=-15m&group_by=path&limit=5&token=" + readToken, status: 200},
		{name: "query uniques", method: "GET", path: "/v1/query?site=demo&metric=visitors&from=-1h&step=1h", header: bearer, status: 200},
		{name: "query bad from", method: "GET", path: "/v1/query?site=demo&metric=events&from=yesterday", header: bearer, status: 400},
		{name: "query bad site", method: "GET", path: "/v1/query?site=Bad%20Site&metric=events", header: bearer, status: 400, invalid: true},
		{name: "query unknown metric", method: "GET", path: "/v1/query?site=demo&metric=nope", header: bearer, status: 400},
		{name: "top", method: "GET", path: "/v1/top?site=demo&metric=pageviews&dim=path&from=-1h&k=5", header: bearer, status: 200},
		{name: "top without dim", method: "GET", path: "/v1/top?site=demo&metric=pageviews", header: bearer, status: 400, invalid: true},
		// Before the upgrade case: the connection limit is checked before
		// the Upgrade header, and the upgrade's connection may not be
		// released yet.
		{name: "ws not an upgrade", method: "GET", path: "/v1/ws?token=" + readToken, status: 426},
		{name: "ws upgrade", method: "GET", path: "/v1/ws?token=" + readToken, header: wsHeaders, status: 101},
		{name: "ws bad token", method: "GET", path: "/v1/ws?token=nope", header: wsHeaders, status: 401},
		{name: "ws too many connections", method: "GET", path: "/v1/ws?token=" + readToken, header: wsHeaders, status: 429, before: holdWS},
		{name: "ws foreign origin", method: "GET", path: "/v1/ws?token=" + readToken, header: map[string]string{"Upgrade": "websocket", "Connection": "Upgrade",
			"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13", "Origin": "https://evil.example"}, status: 403},
		{name: "healthz", method: "GET", path: "/healthz", status: 200},
		{name: "readyz", method: "GET", path: "/readyz", status: 200},
		{name: "prometheus", method: "GET", path: "/metrics", status: 200},
		{name: "openapi", method: "GET", path: "/v1/openapi.yaml", status: 200},
		{name: "dashboard", method: "GET", path: "/", status: 200},
		{name: "dashboard head", method: "HEAD", path: "/", status: 200},
		{name: "tracker", method: "GET", path: "/tracker.js", status: 200},
		{name: "tracker head", method: "HEAD", path: "/tracker.js", status: 200},
		{name: "tracker variant", method: "GET", path: "/tracker.hash.outbound-links.js", status: 200},
		{name: "tracker variant head", method: "HEAD", path: "/tracker.404.exclusions.js", status: 200},
		{name: "tracker unknown variant", method: "GET", path: "/tracker.local.js", status: 404, invalid: true},
		{name: "demo redirect", method: "GET", path: "/demo", status: 301},
		{name: "demo redirect head", method: "HEAD", path: "/demo", status: 301},
		{name: "demo page", method: "GET", path: "/demo/pricing", status: 200},
		{name: "demo head", method: "HEAD", path: "/demo/pricing", status: 200},
		{name: "asset missing", method: "GET", path: "/assets/nope.css", status: 404},
		{name: "asset missing head", method: "HEAD", path: "/assets/nope.css", status: 404},

		// Access: site-scoped read tokens, write keys, the Origin allowlist.
		{name: "query scoped token, other site", method: "GET", path: "/v1/query?site=demo&metric=events&from=-1h",
			header: map[string]string{"Authorization": "Bearer " + scopedToken}, status: 403},
		{name: "stats", method: "POST", path: "/v1/stats", header: sj, status: 200,
			body: `{"site_id":"demo","metrics":["visitors","pageviews"],"date_range":"24h","dimensions":["event:page","visit:referrer"],"filters":[["is","visit:device",["desktop"]]],"include":{"total_rows":true}}`},
		{name: "stats alias, time labels", method: "POST", path: "/api/v2/query", header: sj, status: 200,
			body: `{"site_id":"demo","metrics":["events"],"date_range":"day","dimensions":["time:hour"],"include":{"time_labels":true}}`},
		{name: "stats unknown metric", method: "POST", path: "/v1/stats", header: sj, status: 400, invalid: true,
			body: `{"site_id":"demo","metrics":["pageview"],"date_range":"7d"}`},
		{name: "stats visits", method: "POST", path: "/v1/stats", header: sj, status: 200,
			body: `{"site_id":"demo","metrics":["visits","bounce_rate","visit_duration"],"date_range":"7d","dimensions":["visit:source","visit:entry_page"],"filters":[["is","visit:country",["DE"]]]}`},
		{name: "stats visit metric by page", method: "POST", path: "/v1/stats", header: sj, status: 400,
			body: `{"site_id":"demo","metrics":["visits"],"date_range":"7d","dimensions":["event:page"]}`},
		{name: "stats without token", method: "POST", path: "/v1/stats", header: map[string]string{"Content-Type": "application/json"}, status: 401, invalid: true,
			body: `{"site_id":"demo","metrics":["visitors"],"date_range":"day"}`},
		{name: "stats scoped token, other site", method: "POST", path: "/v1/stats", header: map[string]string{"Authorization": "Bearer " + scopedToken, "Content-Type": "application/json"}, status: 403,
			body: `{"site_id":"demo","metrics":["visitors"],"date_range":"day"}`},
		{name: "stats scoped token, its site", method: "POST", path: "/v1/stats", header: map[string]string{"Authorization": "Bearer " + scopedToken, "Content-Type": "application/json"}, status: 200,
			body: `{"site_id":"othersite","metrics":["visitors"],"date_range":"day"}`},
		{name: "top scoped token, other site, token in query", method: "GET", path: "/v1/top?site=demo&metric=pageviews&dim=path&token=" + scopedToken, status: 403},
		{name: "query scoped token, its site", method: "GET", path: "/v1/query?site=othersite&metric=events&from=-1h",
			header: map[string]string{"Authorization": "Bearer " + scopedToken}, status: 200},
		{name: "catalog scoped token", method: "GET", path: "/v1/metrics?token=" + scopedToken, status: 200},
		{name: "collect refused origin", method: "POST", path: "/v1/collect", header: map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.example"},
			body: `{"id":"oa-o1","site":"demo","type":"pageview"}`, status: 403},
		{name: "collect allowed origin, keyed site", method: "POST", path: "/v1/collect", header: map[string]string{"Content-Type": "text/plain", "Origin": "https://site.example"},
			body: fmt.Sprintf(keyed, 1), status: 202},
		{name: "collect preflight refused origin", method: "OPTIONS", path: "/v1/collect", header: map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, status: 403},
		{name: "preflight without origin", method: "OPTIONS", path: "/v1/collect.gif", status: 403},
		{name: "gif preflight refused origin", method: "OPTIONS", path: "/v1/collect.gif", header: map[string]string{"Origin": "https://evil.example"}, status: 403},
		{name: "collect keyed site without key", method: "POST", path: "/v1/collect", header: text, body: fmt.Sprintf(keyed, 2), status: 403},
		{name: "collect keyed site, one without key", method: "POST", path: "/v1/collect", header: text, status: 202,
			body: fmt.Sprintf(keyed, 3) + "\n" + `{"id":"oa-k4","site":"demo","type":"pageview"}`},
		{name: "collect wrong write key", method: "POST", path: "/v1/collect", header: map[string]string{"Content-Type": "text/plain", "X-Pulse-Key": "not-the-write-key-000"},
			body: fmt.Sprintf(keyed, 5), status: 403},
		{name: "collect write key header", method: "POST", path: "/v1/collect", header: map[string]string{"Content-Type": "text/plain", "X-Pulse-Key": writeKey},
			body: fmt.Sprintf(keyed, 6), status: 202},
		{name: "collect write key bearer", method: "POST", path: "/v1/collect", header: map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer " + writeKey},
			body: fmt.Sprintf(keyed, 7), status: 202},
		{name: "gif keyed site without key", method: "GET", path: "/v1/collect.gif?site=" + keyedSite + "&type=pageview&id=oa-k8", status: 403},
		{name: "gif refused referer origin", method: "GET", path: "/v1/collect.gif?site=demo&type=pageview&id=oa-o2",
			header: map[string]string{"Referer": "https://evil.example/page"}, status: 403},
		{name: "collect headers too large", method: "POST", path: "/v1/collect", header: map[string]string{"Content-Type": "text/plain", "X-Filler": strings.Repeat("a", 200<<10)},
			body: `{"id":"oa-h1","site":"demo","type":"pageview"}`, status: 431},

		// Admin: a replay into a new namespace, verify, promote, drop.
		{name: "admin without token", method: "GET", path: "/v1/admin/namespaces", status: 401, invalid: true},
		{name: "admin with the read token", method: "GET", path: "/v1/admin/namespaces", header: bearer, status: 401, invalid: true},
		{name: "admin namespaces", method: "GET", path: "/v1/admin/namespaces", header: admin, status: 200},
		{name: "admin namespaces, token in query", method: "GET", path: "/v1/admin/namespaces?token=" + adminToken, status: 200},
		{name: "admin replay", method: "POST", path: "/v1/admin/replay", header: adminJSON, body: `{"namespace":"oa2"}`, status: 202, then: waitJob(&replayJob)},
		{name: "admin replay job", method: "GET", pathFn: func() string { return "/v1/admin/jobs/" + replayJob }, header: admin, status: 200},
		{name: "admin job unknown", method: "GET", path: "/v1/admin/jobs/replay-nope", header: admin, status: 404},
		{name: "admin replay bad name", method: "POST", path: "/v1/admin/replay", header: adminJSON, body: `{"namespace":"Bad Name"}`, status: 400, invalid: true},
		{name: "admin replay bad range", method: "POST", path: "/v1/admin/replay", header: adminJSON, body: `{"namespace":"oa3","from":5,"to":1}`, status: 400},
		{name: "admin replay bad metrics config", method: "POST", path: "/v1/admin/replay", header: adminJSON, body: `{"namespace":"oa4","metrics_config":"metrics: [ {"}`, status: 400},
		{name: "admin replay the current namespace", method: "POST", path: "/v1/admin/replay", header: adminJSON, body: `{"namespace":"v1"}`, status: 409},
		{name: "admin verify", method: "POST", path: "/v1/admin/verify", header: adminJSON, status: 202, then: waitJob(&verifyJob),
			body: fmt.Sprintf(`{"from":%d,"to":%d}`, now-time.Hour.Milliseconds(), now+time.Minute.Milliseconds())},
		{name: "admin verify job", method: "GET", pathFn: func() string { return "/v1/admin/jobs/" + verifyJob }, header: admin, status: 200},
		{name: "admin verify bad range", method: "POST", path: "/v1/admin/verify", header: adminJSON, body: `{"from":5,"to":5}`, status: 400},
		{name: "admin jobs", method: "GET", path: "/v1/admin/jobs", header: admin, status: 200},
		{name: "admin promote", method: "POST", path: "/v1/admin/namespaces/oa2/promote", header: admin, status: 200},
		{name: "admin promote refused", method: "POST", path: "/v1/admin/namespaces/oa2/promote", header: admin, status: 409},
		{name: "admin promote unknown", method: "POST", path: "/v1/admin/namespaces/nope/promote", header: admin, status: 404},
		{name: "admin drop current", method: "DELETE", path: "/v1/admin/namespaces/oa2", header: admin, status: 409},
		{name: "admin drop", method: "DELETE", path: "/v1/admin/namespaces/v1", header: admin, status: 200},
		{name: "admin drop unknown", method: "DELETE", path: "/v1/admin/namespaces/v1", header: admin, status: 404},
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// readyz must be 200 before its case runs: a fresh server catches up first.
	for readyz(t, s) != http.StatusOK {
		if ctx.Err() != nil {
			t.Fatal("server never ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if tc.pathFn != nil {
				path = tc.pathFn()
			}
			newReq := func() *http.Request {
				req, err := http.NewRequestWithContext(ctx, tc.method, "http://"+s.addr+path, strings.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				if tc.body == "" {
					req.Body, req.ContentLength = http.NoBody, 0
				}
				for k, v := range tc.header {
					req.Header.Set(k, v)
				}
				return req
			}
			if tc.before != nil {
				tc.before(t)
			}
			route, params, err := router.FindRoute(newReq())
			if err != nil {
				t.Fatalf("%s %s: not in the spec: %v", tc.method, path, err)
			}
			in := &openapi3filter.RequestValidationInput{Request: newReq(), PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: authenticate, MultiError: true}}
			err = openapi3filter.ValidateRequest(ctx, in)
			switch {
			case tc.invalid && err == nil:
				t.Errorf("request validates against the spec, but the case breaks it on purpose: the spec lost a constraint")
			case !tc.invalid && err != nil:
				t.Errorf("request does not validate against the spec: %v", err)
			}

			resp, err := client.Do(newReq())
			if err != nil {
				t.Fatal(err)
			}
			var body []byte
			if resp.StatusCode != http.StatusSwitchingProtocols {
				body, err = io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("answered %d, want %d: %.300s", resp.StatusCode, tc.status, body)
			}
			// The response is validated with a request input that passed
			// authentication, so that deliberately invalid requests still
			// have their answers checked.
			in.Options = &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
				Options: in.Options}
			out.SetBodyBytes(body)
			if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
				t.Errorf("%d answer (%s) does not validate against the spec: %v\nbody: %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), err, body)
			}
			if tc.then != nil {
				tc.then(t, body)
			}
		})
	}
}

// authenticate checks the spec's security schemes as the server does: a
// read token (site-scoped or not; the scope is the server's business) or
// the admin token as a bearer header or ?token=, the write key as
// X-Pulse-Key or a bearer header.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	bearer, query := r.Header.Get("Authorization"), r.URL.Query().Get("token")
	switch in.SecuritySchemeName {
	case "readBearer":
		if bearer == "Bearer "+readToken || bearer == "Bearer "+scopedToken {
			return nil
		}
	case "readQuery":
		if query == readToken || query == scopedToken {
			return nil
		}
	case "adminBearer":
		if bearer == "Bearer "+adminToken {
			return nil
		}
	case "adminQuery":
		if query == adminToken {
			return nil
		}
	case "writeKey":
		if r.Header.Get("X-Pulse-Key") == writeKey {
			return nil
		}
	case "writeBearer":
		if bearer == "Bearer "+writeKey {
			return nil
		}
	default:
		return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
	}
	return errors.New("no valid token")
}

// adminGet fetches path with the admin token and decodes its JSON into v.
func adminGet(ctx context.Context, s *server, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url(path), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.300s", path, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}
