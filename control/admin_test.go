package control_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/control"
)

// serveAdmin returns the admin routes of rt as a handler.
func serveAdmin(rt *control.Runtime) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	eng := gin.New()
	eng.ContextWithFallback = true
	rt.RegisterAdmin(eng)
	return eng
}

// do sends a request and returns the status and the decoded JSON body.
func do(t *testing.T, h http.Handler, method, path, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, w.Body, err)
	}
	return w.Code, out
}

func TestAdminStatus(t *testing.T) {
	node := serveAdmin(newEnv(t, nil).rt)
	pushOnly := serveAdmin(newEnv(t, func(c *control.Config) { c.Stream, c.Aggregate = nil, false }).rt)
	for _, tc := range []struct {
		name, method, path, body string
		h                        http.Handler
		want                     int
	}{
		{"list namespaces", "GET", "/v1/admin/namespaces", "", node, 200},
		{"list jobs", "GET", "/v1/admin/jobs", "", node, 200},
		{"unknown job", "GET", "/v1/admin/jobs/replay-000000000000", "", node, 404},
		{"promote unknown", "POST", "/v1/admin/namespaces/nope/promote", "", node, 404},
		{"promote current", "POST", "/v1/admin/namespaces/v1/promote", "", node, 409},
		{"drop current", "DELETE", "/v1/admin/namespaces/v1", "", node, 409},
		{"drop unknown", "DELETE", "/v1/admin/namespaces/nope", "", node, 404},
		{"replay bad name", "POST", "/v1/admin/replay", `{"namespace":"Bad Name"}`, node, 400},
		{"replay not json", "POST", "/v1/admin/replay", `{"namespace":`, node, 400},
		{"replay from after to", "POST", "/v1/admin/replay", `{"namespace":"v3","from":5,"to":1}`, node, 400},
		{"replay bad metrics config", "POST", "/v1/admin/replay", `{"namespace":"v3","metrics_config":"metrics: ["}`, node, 400},
		{"replay the current namespace", "POST", "/v1/admin/replay", `{"namespace":"v1"}`, node, 409},
		{"verify from after to", "POST", "/v1/admin/verify", `{"from":5,"to":1}`, node, 400},
		{"replay body over 1 MiB", "POST", "/v1/admin/replay", `{"namespace":"v3","metrics_config":"` + strings.Repeat("#", 1<<20) + `"}`, node, 413},
		{"verify body over 1 MiB", "POST", "/v1/admin/verify", strings.Repeat(" ", 1<<20) + `{"from":1,"to":2}`, node, 413},
		{"replay without a stream", "POST", "/v1/admin/replay", `{"namespace":"v2"}`, pushOnly, 503},
		{"verify without a stream", "POST", "/v1/admin/verify", `{"from":1,"to":2}`, pushOnly, 503},
		{"namespaces without a stream", "GET", "/v1/admin/namespaces", "", pushOnly, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, tc.h, tc.method, tc.path, tc.body)
			if code != tc.want {
				t.Fatalf("%s %s: %d %v, want %d", tc.method, tc.path, code, body, tc.want)
			}
			if _, ok := body["error"]; ok != (code >= 400) {
				t.Errorf("%s %s: %d with body %v: an error body goes with an error status only", tc.method, tc.path, code, body)
			}
		})
	}
}

// TestAdminReplay starts a replay over HTTP and follows it to its end.
func TestAdminReplay(t *testing.T) {
	e := newEnv(t, nil)
	e.put(t, 10)
	h := serveAdmin(e.rt)
	code, body := do(t, h, "POST", "/v1/admin/replay", `{"namespace":"v2"}`)
	if code != http.StatusAccepted || body["state"] != control.JobRunning {
		t.Fatalf("POST replay: %d %v, want 202 running", code, body)
	}
	id, _ := body["id"].(string)
	waitFor(t, "job "+id+" done", func() bool {
		code, body := do(t, h, "GET", "/v1/admin/jobs/"+id, "")
		if code != http.StatusOK || body["state"] == control.JobFailed {
			t.Fatalf("GET job: %d %v", code, body)
		}
		return body["state"] == control.JobDone
	})
	code, body = do(t, h, "GET", "/v1/admin/jobs", "")
	if jobs, _ := body["jobs"].([]any); code != http.StatusOK || len(jobs) != 1 {
		t.Errorf("GET jobs: %d %v, want the one job", code, body)
	}
	code, body = do(t, h, "POST", "/v1/admin/namespaces/v2/promote", "")
	if code != http.StatusOK || body["current"] != "v2" || body["previous"] != "v1" {
		t.Errorf("POST promote v2: %d %v", code, body)
	}
	code, body = do(t, h, "DELETE", "/v1/admin/namespaces/v1", "")
	if code != http.StatusOK || body["dropped"] != "v1" {
		t.Errorf("DELETE v1 after promoting v2: %d %v", code, body)
	}
}
