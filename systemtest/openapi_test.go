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

// openAPIPath turns gin's /demo/*path and /x/:id into /demo/{path}, /x/{id}.
func openAPIPath(ginPath string) string {
	segs := strings.Split(ginPath, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			segs[i] = "{" + s[1:] + "}"
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
	s := newServer(t, "--redis", rs.URL(), "--log-level", "debug", "--rate-ip", "-1", "--rate-site", "-1")

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
			if !specOf[op] {
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

type apiCase struct {
	name    string
	method  string
	path    string // with query
	header  map[string]string
	body    string
	status  int
	invalid bool // the request breaks the spec on purpose (no token, bad site)
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
	text := map[string]string{"Content-Type": "text/plain"}
	wsHeaders := map[string]string{"Upgrade": "websocket", "Connection": "Upgrade",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13", "Origin": "http://" + s.addr}
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
		{name: "gif preflight", method: "OPTIONS", path: "/v1/collect.gif", status: 204},
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
		{name: "ws upgrade", method: "GET", path: "/v1/ws?token=" + readToken, header: wsHeaders, status: 101},
		{name: "ws not an upgrade", method: "GET", path: "/v1/ws?token=" + readToken, status: 426},
		{name: "ws bad token", method: "GET", path: "/v1/ws?token=nope", header: wsHeaders, status: 401},
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
		{name: "demo redirect", method: "GET", path: "/demo", status: 301},
		{name: "demo redirect head", method: "HEAD", path: "/demo", status: 301},
		{name: "demo page", method: "GET", path: "/demo/pricing", status: 200},
		{name: "demo head", method: "HEAD", path: "/demo/pricing", status: 200},
		{name: "asset missing", method: "GET", path: "/assets/nope.css", status: 404},
		{name: "asset missing head", method: "HEAD", path: "/assets/nope.css", status: 404},
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
			newReq := func() *http.Request {
				req, err := http.NewRequestWithContext(ctx, tc.method, "http://"+s.addr+tc.path, strings.NewReader(tc.body))
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
			route, params, err := router.FindRoute(newReq())
			if err != nil {
				t.Fatalf("%s %s: not in the spec: %v", tc.method, tc.path, err)
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
		})
	}
}

// authenticate checks the spec's security schemes as the server does: the
// read token as a bearer header or ?token=.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	switch in.SecuritySchemeName {
	case "readBearer":
		if r.Header.Get("Authorization") == "Bearer "+readToken {
			return nil
		}
	case "readQuery":
		if r.URL.Query().Get("token") == readToken {
			return nil
		}
	case "adminBearer":
		if r.Header.Get("Authorization") == "Bearer "+adminToken {
			return nil
		}
	default:
		return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
	}
	return errors.New("no valid token")
}
