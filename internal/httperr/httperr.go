// Package httperr turns the error a gin handler returns into its HTTP
// answer: handlers return an *Error (or a sentinel error a package
// classifies), and Handle writes the status, a Retry-After when asked and
// the body, logging server-side failures with their cause.
package httperr

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// StatusClientClosed is the status logged for a request whose client went
// away (nginx's 499); nobody reads its answer, so it has no body.
const StatusClientClosed = 499

// Error is a handler failure with the answer it gets.
type Error struct {
	// Status is the HTTP status of the answer.
	Status int
	// Msg is what the client is told.
	Msg string
	// Err is the cause: logged for a 5xx, never shown to the client.
	Err error
	// RetryAfter, when positive, is sent as a Retry-After header in whole
	// seconds, rounded up.
	RetryAfter time.Duration
}

// New returns an Error answering status with msg.
func New(status int, msg string) *Error {
	return &Error{Status: status, Msg: msg}
}

// Wrap returns an Error answering status with msg, caused by err.
func Wrap(status int, msg string, err error) *Error {
	return &Error{Status: status, Msg: msg, Err: err}
}

// BadRequest returns a 400 Error telling the client msg.
func BadRequest(msg string) *Error {
	return New(http.StatusBadRequest, msg)
}

// WithRetryAfter sets the Retry-After of e and returns e.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	e.RetryAfter = d
	return e
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Classifier gives the answer to an error that is not an *Error, typically
// one of a package's sentinel errors; nil means it does not know the error.
type Classifier func(err error) *Error

// Sentinel pairs an error with the status it answers.
type Sentinel struct {
	Err    error
	Status int
}

// Sentinels returns a Classifier that answers an error matching (errors.Is)
// one of s with that one's status, the first match winning, and the
// error's own text as the message: sentinel errors are written to be read.
func Sentinels(s ...Sentinel) Classifier {
	return func(err error) *Error {
		for _, x := range s {
			if errors.Is(err, x.Err) {
				return Wrap(x.Status, err.Error(), err)
			}
		}
		return nil
	}
}

// Renderer writes the answer of e, which Handle made from err, the error
// the handler returned (a renderer may look in err for details of its
// package). Status and Retry-After are not yet written.
type Renderer func(c *gin.Context, err error, e *Error)

// Option configures Handle.
type Option func(*handler)

// Classify makes Handle ask f about errors that are not an *Error.
func Classify(f Classifier) Option { return func(h *handler) { h.classify = f } }

// Render makes Handle write answers with f instead of {"error": msg}.
func Render(f Renderer) Option { return func(h *handler) { h.render = f } }

// Log makes Handle log 5xx answers, with their cause, to l as msg; a nil
// l logs nothing.
func Log(l *slog.Logger, msg string) Option {
	return func(h *handler) {
		if l != nil {
			h.log, h.logMsg = l, msg
		}
	}
}

type handler struct {
	classify Classifier
	render   Renderer
	log      *slog.Logger
	logMsg   string
}

// Handle returns a gin handler that runs fn and answers its error. The
// answer is, in this order: an *Error found in the error chain; 499 and no
// body when the error is context.Canceled (the client went away); the
// Classifier's answer; else 500 "internal error". A request that succeeds
// costs one call and no allocation.
func Handle(fn func(*gin.Context) error, opts ...Option) gin.HandlerFunc {
	h := handler{render: renderJSON, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&h)
	}
	return func(c *gin.Context) {
		if err := fn(c); err != nil {
			h.answer(c, err)
		}
	}
}

func (h *handler) answer(c *gin.Context, err error) {
	e := h.resolve(err)
	if e.Status == StatusClientClosed {
		c.Status(e.Status)
		return
	}
	if e.Status >= 500 {
		h.log.ErrorContext(c.Request.Context(), h.logMsg, "path", c.Request.URL.Path, "status", e.Status, "err", e.Error())
	}
	if e.RetryAfter > 0 {
		c.Writer.Header().Set("Retry-After", strconv.Itoa(retryAfterSecs(e.RetryAfter)))
	}
	h.render(c, err, e)
}

// resolve finds the answer to err.
func (h *handler) resolve(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, context.Canceled):
		return Wrap(StatusClientClosed, "request canceled", err)
	}
	if h.classify != nil {
		if e := h.classify(err); e != nil {
			return e
		}
	}
	return Wrap(http.StatusInternalServerError, "internal error", err)
}

func renderJSON(c *gin.Context, _ error, e *Error) {
	c.JSON(e.Status, gin.H{"error": e.Msg})
}

// retryAfterSecs is d > 0 in whole seconds, rounded up, so never "0",
// which would invite an immediate retry that would be refused again.
func retryAfterSecs(d time.Duration) int {
	return int(min(math.Ceil(d.Seconds()), math.MaxInt32))
}
