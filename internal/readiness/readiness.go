// Package readiness tells load balancers and orchestrators what a process
// is doing while it starts, serves and stops. /healthz answers 200 for as
// long as the process runs; /readyz answers 200 only while it serves and
// its own check passes, and 503 with the reason otherwise: what start-up
// waits for, or "shutting down". Until the process serves, every other
// request gets 503 with Retry-After, so a client retries instead of
// meeting a 404 of a route not registered yet.
//
// During start-up, Retry brings up a dependency that is not ready yet
// (Redis still loading, a cluster not settled, a stream endpoint not
// listening) with capped backoff instead of letting the process exit.
package readiness

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// Gate is the front handler of a process's HTTP listener. The zero value
// is not usable; call New. Safe for concurrent use.
type Gate struct {
	log     *slog.Logger
	waiting atomic.Pointer[string] // what start-up waits for
	serving atomic.Pointer[serving]
	drain   atomic.Bool
}

type serving struct {
	h     http.Handler
	check func(ctx context.Context) string
}

// New returns a gate that is starting: /readyz says "starting" until Retry
// names what it waits for or Serve opens it.
func New(log *slog.Logger) *Gate {
	g := &Gate{log: log}
	g.setWaiting("starting")
	return g
}

func (g *Gate) setWaiting(s string) { g.waiting.Store(&s) }

// Serve opens the gate: from now on requests go to h, and /readyz answers
// 503 with check's message when it returns one ("" means ready).
func (g *Gate) Serve(h http.Handler, check func(ctx context.Context) string) {
	g.serving.Store(&serving{h: h, check: check})
}

// Drain makes /readyz answer 503 "shutting down" from now on, while every
// other route still answers, each answer closing its connection: load
// balancers take the node out before its listener closes, and keep-alive
// clients move off it.
func (g *Gate) Drain() { g.drain.Store(true) }

// ServeHTTP serves /healthz and /readyz until the gate is open, and 503
// with Retry-After for everything else; once open, the handler given to
// Serve, which routes /healthz and /readyz back to Healthz and Readyz.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.drain.Load() {
		// The connection closes after this answer, which the client
		// reads before sending again: it reconnects, through the load
		// balancer, elsewhere. (Closing idle connections instead races
		// with a client sending on one, which then sees a reset.)
		w.Header().Set("Connection", "close")
	}
	if s := g.serving.Load(); s != nil {
		s.h.ServeHTTP(w, r)
		return
	}
	switch r.URL.Path {
	case "/healthz":
		g.Healthz(w, r)
	case "/readyz":
		g.Readyz(w, r)
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, *g.waiting.Load(), http.StatusServiceUnavailable)
	}
}

// Healthz answers 200: the process runs and serves HTTP.
func (g *Gate) Healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok\n"))
}

// Readyz answers 200 "ready" while the gate is open and the check passes,
// otherwise 503 with the reason.
func (g *Gate) Readyz(w http.ResponseWriter, r *http.Request) {
	msg := *g.waiting.Load()
	switch s := g.serving.Load(); {
	case g.drain.Load():
		msg = "shutting down"
	case s != nil:
		msg = ""
		if s.check != nil {
			msg = s.check(r.Context())
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if msg != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(msg + "\n"))
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ready\n"))
}

// Backoff bounds of Retry: the first retry comes quickly (a dependency
// started together with this process is usually up within a second), the
// interval doubles up to a cap, so a long outage costs one attempt every
// few seconds and a recovery is noticed within that cap.
const (
	FirstBackoff = 100 * time.Millisecond
	MaxBackoff   = 5 * time.Second
)

// Retry calls fn until it returns nil, an error that is not Transient, or
// ctx ends (then it returns ctx's error). Between attempts it waits
// FirstBackoff, doubling up to MaxBackoff, and /readyz says "waiting for
// what: <last error>".
func (g *Gate) Retry(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	g.setWaiting("waiting for " + what)
	wait := FirstBackoff
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		switch {
		case err == nil:
			if attempt > 1 {
				g.log.Info("start-up: ready", "dependency", what, "attempts", attempt)
			}
			g.setWaiting("starting")
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !Transient(err):
			return err
		}
		g.setWaiting("waiting for " + what + ": " + err.Error())
		g.log.Warn("start-up: not ready yet, retrying", "dependency", what, "attempt", attempt, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, MaxBackoff)
	}
}
