package ingest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/httperr"
)

// refusal is a failure whose answer lists the refused events and why.
type refusal struct {
	e        *httperr.Error
	rejected []event.Reject
}

func (r *refusal) Error() string { return r.e.Error() }
func (r *refusal) Unwrap() error { return r.e }

// refuse answers status with msg and the reasons of the refused events.
func refuse(status int, msg string, rejected []event.Reject) error {
	return &refusal{e: httperr.New(status, msg), rejected: rejected}
}

// answer is the JSON body of every collect answer.
type answer struct {
	Accepted int            `json:"accepted"`
	Rejected []event.Reject `json:"rejected"`
	Error    string         `json:"error,omitempty"`
}

// wrap turns a handler that returns an error into a gin handler: the error
// becomes a status and a body (render), and every request is counted.
func (h *Handler) wrap(fn func(*gin.Context) error, render httperr.Renderer) gin.HandlerFunc {
	handle := httperr.Handle(fn, httperr.Render(render), httperr.Log(h.cfg.Logger, "collect failed"))
	return func(c *gin.Context) {
		start := time.Now()
		h.cors(c)
		hd := c.Writer.Header()
		hd["Access-Control-Expose-Headers"] = exposeHeaders
		if h.dedupWindow != nil {
			hd["Pulse-Dedup-Window"] = h.dedupWindow
		}
		handle(c)
		if st := c.Writer.Status(); st == http.StatusAccepted {
			h.m.accepted202.Inc()
		} else {
			h.m.requests.WithLabelValues(strconv.Itoa(st)).Inc()
		}
		h.m.seconds.Observe(time.Since(start).Seconds())
	}
}

// renderJSON writes the collect answer of a failure, with the reasons of
// the refused events when err carries them.
func renderJSON(c *gin.Context, err error, e *httperr.Error) {
	a := answer{Error: e.Msg}
	var r *refusal
	if errors.As(err, &r) {
		a.Rejected = r.rejected
	}
	writeJSON(c, e.Status, &a)
}

// Header values that every answer carries, made once: setting them with
// Header.Set allocates a slice per header per request. net/http only reads
// them, and an Add would copy (their capacity is their length).
var (
	exposeHeaders = []string{"Retry-After, X-Pulse-Error, Pulse-Dedup-Window"}
	noStore       = []string{"no-store"}
	jsonType      = []string{"application/json; charset=utf-8"}
	anyOrigin     = []string{"*"}
)

// acceptedBodies are the answers of requests whose events were all
// accepted, made once for the usual batch sizes: no allocation per answer.
var acceptedBodies = func() [][]byte {
	bs := make([][]byte, event.DefaultMaxEvents+1)
	for n := range bs {
		bs[n] = appendAccepted(nil, n)
	}
	return bs
}()

func acceptedBody(n int) []byte {
	if n >= 0 && n < len(acceptedBodies) {
		return acceptedBodies[n]
	}
	return appendAccepted(make([]byte, 0, 48), n)
}

func appendAccepted(b []byte, n int) []byte {
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, `,"rejected":[]}`...)
}

func writeJSON(c *gin.Context, status int, a *answer) {
	if len(a.Rejected) == 0 && a.Error == "" {
		// The answer to almost every request, written without reflection.
		writeBody(c, status, acceptedBody(a.Accepted))
		return
	}
	if a.Rejected == nil {
		a.Rejected = []event.Reject{}
	}
	b, err := json.Marshal(a)
	if err != nil { // cannot happen: strings, ints
		b = []byte(`{"accepted":0,"rejected":[],"error":"internal error"}`)
		status = http.StatusInternalServerError
	}
	writeBody(c, status, b)
}

// writeAccepted is writeJSON of an answer, kept off the heap: every
// request answered 202 writes one.
func writeAccepted(c *gin.Context, accepted int, rejected []event.Reject) {
	if len(rejected) == 0 {
		writeBody(c, http.StatusAccepted, acceptedBody(accepted))
		return
	}
	writeJSON(c, http.StatusAccepted, &answer{Accepted: accepted, Rejected: rejected})
}

// writeBody writes the JSON body b of a collect answer.
func writeBody(c *gin.Context, status int, b []byte) {
	hd := c.Writer.Header()
	hd["Cache-Control"] = noStore
	hd["Content-Type"] = jsonType
	c.Status(status)
	_, _ = c.Writer.Write(b)
}
