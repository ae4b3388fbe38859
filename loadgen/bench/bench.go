// Package bench is the harness behind `pulse bench`: it runs the pulse
// binary, and the servers it is compared with (a bare net/http server,
// Centrifugo), as child processes on 127.0.0.1, drives them with loadgen,
// reads their CPU time and resident memory from /proc, and prints the
// figures as Markdown tables. Every run is bounded in time and sends load
// only to the children it started.
package bench

import (
	"io"
	"net/http"
	"time"
)

// Env is what every bench needs: the binary it measures and where its
// output goes.
type Env struct {
	// Pulse is the pulse binary; the bench runs its `serve` and its hidden
	// `bench baseline-server` command. cmd/pulse passes itself.
	Pulse string
	Out   io.Writer // the result table, Markdown
	Log   io.Writer // progress and notes
}

// PushFlushRate is how many deltas per second one subscription can get:
// the push hub flushes every 50 ms.
const PushFlushRate = 20

// perSourceIP is how many subscribers share one loopback source address;
// pulse serve allows 64 WebSocket connections per client IP.
const perSourceIP = 50

// The bench's tokens: fixed, and as long as pulse serve wants them (16
// bytes or more).
const (
	readToken  = "bench-read-token-0123456789"
	adminToken = "bench-admin-token-0123456789"
)

// serveArgs runs pulse serve on data with the abuse limits off (per-IP
// request rate and per-site event rate): the bench measures the pipeline,
// from one address, at rates above the defaults. The bench's own tokens
// are fixed; nothing but the bench reaches the child, and it names its
// own sites (--sites '*').
func serveArgs(data string) []string {
	return []string{"serve", "--data", data, "--read-token", readToken, "--admin-token", adminToken,
		"--rate-ip", "-1", "--rate-site", "-1", "--sites", "*", "--log-level", "warn"}
}

// browserHeader is sent with every push-bench event: Pulse flags a
// non-browser User-Agent (Go's default among them) as a bot and counts it
// in the "bots" metric instead of "events".
func browserHeader() http.Header {
	return http.Header{"User-Agent": {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"}}
}

// round shortens d for a table cell, keeping three significant digits or
// so.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	default:
		return d.Round(10 * time.Microsecond)
	}
}
