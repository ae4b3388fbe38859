package httperr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

var (
	errNotFound = errors.New("thing: not found")
	errConflict = errors.New("thing: conflict")
	errBadName  = errors.New("thing: bad name")
)

// sentinels is the classifier an admin API would use.
var sentinels = Sentinels(
	Sentinel{errBadName, http.StatusBadRequest},
	Sentinel{errNotFound, http.StatusNotFound},
	Sentinel{errConflict, http.StatusConflict},
)

func TestHandle(t *testing.T) {
	gin.SetMode(gin.TestMode)
	cause := errors.New("dial tcp: connection refused")
	tests := []struct {
		name       string
		err        error
		opts       []Option
		status     int
		body       string // exact body; "" means none
		retryAfter string
		logged     string // substring of the log; "" means nothing logged
	}{
		{name: "success", err: nil, status: http.StatusOK, body: "ok"},
		{name: "bad request", err: BadRequest("site: required"),
			status: 400, body: `{"error":"site: required"}`},
		{name: "error wrapped around an Error", err: fmt.Errorf("read: %w", New(http.StatusRequestEntityTooLarge, "too big")),
			status: 413, body: `{"error":"too big"}`},
		{name: "5xx is logged with its cause, which the client does not see", err: Wrap(http.StatusServiceUnavailable, "store down", cause),
			status: 503, body: `{"error":"store down"}`, logged: "connection refused"},
		{name: "retry after rounds up to whole seconds", err: New(http.StatusTooManyRequests, "slow down").WithRetryAfter(1500 * time.Millisecond),
			status: 429, body: `{"error":"slow down"}`, retryAfter: "2"},
		{name: "retry after under a second is 1, not 0", err: Wrap(http.StatusServiceUnavailable, "busy", cause).WithRetryAfter(time.Millisecond),
			status: 503, body: `{"error":"busy"}`, retryAfter: "1", logged: "busy"},
		{name: "unknown error is 500 and logged", err: cause,
			status: 500, body: `{"error":"internal error"}`, logged: "connection refused"},
		{name: "canceled is 499 without a body", err: fmt.Errorf("read: %w", context.Canceled),
			status: StatusClientClosed},
		{name: "an Error wins over the cancellation it wraps", err: Wrap(http.StatusServiceUnavailable, "request canceled", context.Canceled),
			status: 503, body: `{"error":"request canceled"}`, logged: "context canceled"},
		{name: "canceled is 499 before the classifier", err: context.Canceled, opts: []Option{Classify(func(error) *Error { return New(503, "x") })},
			status: StatusClientClosed},
		{name: "sentinel 404 with the error's text", err: fmt.Errorf("%w: ns1", errNotFound), opts: []Option{Classify(sentinels)},
			status: 404, body: `{"error":"thing: not found: ns1"}`},
		{name: "sentinel 409", err: fmt.Errorf("%w: ns1 is current", errConflict), opts: []Option{Classify(sentinels)},
			status: 409, body: `{"error":"thing: conflict: ns1 is current"}`},
		{name: "sentinel 400", err: errBadName, opts: []Option{Classify(sentinels)},
			status: 400, body: `{"error":"thing: bad name"}`},
		{name: "classifier does not know the error", err: cause, opts: []Option{Classify(sentinels)},
			status: 500, body: `{"error":"internal error"}`, logged: "connection refused"},
		{name: "an Error is not classified", err: BadRequest("bad"), opts: []Option{Classify(func(error) *Error { return New(503, "x") })},
			status: 400, body: `{"error":"bad"}`},
		{name: "own renderer sees the handler's error", err: fmt.Errorf("outer: %w", New(http.StatusForbidden, "no")),
			opts: []Option{Render(func(c *gin.Context, err error, e *Error) {
				c.String(e.Status, "%s|%s", e.Msg, err)
			})},
			status: 403, body: "no|outer: no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			r := gin.New()
			opts := append([]Option{Log(log, "request failed")}, tt.opts...)
			r.GET("/x", Handle(func(c *gin.Context) error {
				if tt.err == nil {
					c.String(http.StatusOK, "ok")
				}
				return tt.err
			}, opts...))
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
			if w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
			if got := w.Body.String(); got != tt.body {
				t.Errorf("body %q, want %q", got, tt.body)
			}
			if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			switch got := logs.String(); {
			case tt.logged == "" && got != "":
				t.Errorf("logged %q, want nothing", got)
			case tt.logged != "" && !strings.Contains(got, tt.logged):
				t.Errorf("logged %q, want it to contain %q", got, tt.logged)
			case tt.logged != "" && !strings.Contains(got, "path=/x"):
				t.Errorf("logged %q without the path", got)
			}
		})
	}
}

func TestErrorChain(t *testing.T) {
	cause := errors.New("boom")
	tests := []struct {
		err     *Error
		text    string
		isCause bool
	}{
		{New(400, "bad"), "bad", false},
		{Wrap(503, "store down", cause), "store down: boom", true},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.text {
			t.Errorf("Error() = %q, want %q", got, tt.text)
		}
		if got := errors.Is(tt.err, cause); got != tt.isCause {
			t.Errorf("%q: errors.Is(cause) = %v, want %v", tt.text, got, tt.isCause)
		}
	}
}

// TestHandleSuccessAllocs: the wrapper adds no allocation to a request that
// succeeds (ingest's fast path relies on it).
func TestHandleSuccessAllocs(t *testing.T) {
	gin.SetMode(gin.TestMode)
	h := Handle(func(*gin.Context) error { return nil }, Classify(sentinels), Log(slog.New(slog.DiscardHandler), "x"))
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest(http.MethodGet, "/x", nil)
	if n := testing.AllocsPerRun(100, func() { h(c) }); n != 0 {
		t.Errorf("%v allocations per successful request, want 0", n)
	}
}
