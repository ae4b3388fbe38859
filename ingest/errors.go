package ingest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/event"
)

// httpError is a handler failure with the status it answers.
type httpError struct {
	status     int
	msg        string // for the client
	retryAfter bool   // add Retry-After
	// retryAfterSecs, when positive, is the Retry-After to send instead of
	// the configured one.
	retryAfterSecs int
	rejected       []event.Reject // per-event reasons, when known
	err            error          // cause, for the log
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.err }

// answer is the JSON body of every collect answer.
type answer struct {
	Accepted int            `json:"accepted"`
	Rejected []event.Reject `json:"rejected"`
	Error    string         `json:"error,omitempty"`
}

// wrap turns a handler that returns an error into a gin handler: the error
// becomes a status and a body (render), and every request is counted.
func (h *Handler) wrap(fn func(*gin.Context) error, render func(*gin.Context, *httpError)) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		hd := c.Writer.Header()
		h.cors(c)
		hd["Access-Control-Expose-Headers"] = exposeHeaders
		if err := fn(c); err != nil {
			var he *httpError
			if !errors.As(err, &he) {
				he = &httpError{status: http.StatusInternalServerError, msg: "internal error", err: err}
			}
			if he.retryAfterSecs > 0 {
				hd.Set("Retry-After", strconv.Itoa(he.retryAfterSecs))
			} else if he.retryAfter {
				hd.Set("Retry-After", h.retryAfter)
			}
			if he.status >= 500 {
				h.cfg.Logger.WarnContext(c.Request.Context(), "collect failed", "status", he.status, "err", he.Error())
			}
			render(c, he)
		}
		if st := c.Writer.Status(); st == http.StatusAccepted {
			h.m.accepted202.Inc()
		} else {
			h.m.requests.WithLabelValues(strconv.Itoa(st)).Inc()
		}
		h.m.seconds.Observe(time.Since(start).Seconds())
	}
}

func renderJSON(c *gin.Context, e *httpError) {
	a := answer{Rejected: e.rejected, Error: e.msg}
	writeJSON(c, e.status, &a)
}

// Header values that every answer carries, made once: setting them with
// Header.Set allocates a slice per header per request. net/http only reads
// them, and an Add would copy (their capacity is their length).
var (
	exposeHeaders = []string{"Retry-After, X-Pulse-Error"}
	noStore       = []string{"no-store"}
	jsonType      = []string{"application/json; charset=utf-8"}
	anyOrigin     = []string{"*"}
)

func writeJSON(c *gin.Context, status int, a *answer) {
	var b []byte
	if len(a.Rejected) == 0 && a.Error == "" {
		// The answer to almost every request, written without reflection.
		b = make([]byte, 0, 48)
		b = append(b, `{"accepted":`...)
		b = strconv.AppendInt(b, int64(a.Accepted), 10)
		b = append(b, `,"rejected":[]}`...)
	} else {
		if a.Rejected == nil {
			a.Rejected = []event.Reject{}
		}
		var err error
		if b, err = json.Marshal(a); err != nil { // cannot happen: strings, ints
			b = []byte(`{"accepted":0,"rejected":[],"error":"internal error"}`)
			status = http.StatusInternalServerError
		}
	}
	hd := c.Writer.Header()
	hd["Cache-Control"] = noStore
	hd["Content-Type"] = jsonType
	c.Status(status)
	_, _ = c.Writer.Write(b)
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }
