package systemtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/redistest"
)

// waitFor polls cond every 20ms until it holds, or fails the test with what
// when ctx ends. Faults are waited for by their effect, never by a fixed
// sleep that assumes a speed.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting: %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestRedisPause makes redis-server unreachable without refusing
// connections (SIGSTOP: connects succeed, nothing answers, as with a hung
// host or a partition) for seconds under load. Ingest keeps answering 202
// into the stream, /readyz says not ready, the aggregator's applies time
// out; after SIGCONT Redis runs what was queued (possibly an apply whose
// reply the aggregator gave up on), aggregation resumes, and every
// aggregate equals the ground truth exactly.
func TestRedisPause(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "yes")
	s := newServer(t, "--redis", rs.URL(), "--rate-ip", "-1", "--rate-site", "-1")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	now := time.Now()
	tr := newTruth()
	srv := func() *server { return s }
	l := startLoad(ctx, t, srv, tr, now, loadConfig{Seed: uint64(now.UnixNano()), Resend: 5, IDPrefix: "rp"})
	waitFor(ctx, t, "first 300 events acknowledged", func() bool { return l.acked.Load() >= 300 })

	rs.Pause()
	resumed := false
	defer func() {
		if !resumed {
			rs.Resume()
		}
	}()
	before := l.acked.Load()
	waitFor(ctx, t, "/readyz not ready with Redis paused", func() bool { return readyz(t, s) == http.StatusServiceUnavailable })
	// Seconds without Redis, measured by what ingest does meanwhile: it
	// must keep acknowledging into the stream.
	waitFor(ctx, t, "ingest acknowledging 1,000 events with Redis paused", func() bool { return l.acked.Load() >= before+1000 })
	// Hold the pause past go-redis's 3s read timeout, so applies in
	// flight fail and the aggregator restarts from the stored positions.
	time.Sleep(4 * time.Second)
	pausedAcks := l.acked.Load() - before
	if st := readyz(t, s); st != http.StatusServiceUnavailable {
		t.Errorf("/readyz answered %d with Redis still paused, want 503", st)
	}
	rs.Resume()
	resumed = true
	after := l.acked.Load()
	waitFor(ctx, t, "300 more events after the pause", func() bool { return l.acked.Load() >= after+300 })
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events acknowledged (%d while Redis was paused), %d requests resent", tr.size(), pausedAcks, l.unanswered.Load())
	waitExact(ctx, t, srv, tr, now)
	waitFor(ctx, t, "/readyz ready after the pause", func() bool { return readyz(t, s) == http.StatusOK })
	t.Logf("aggregator errors counted: apply %v, position %v",
		metricValue(t, s, `pulse_aggregator_errors_total{op="apply"}`), metricValue(t, s, `pulse_aggregator_errors_total{op="position"}`))
}

// TestStreamSaturated shrinks ingest's admission limit (--max-inflight) to
// one request's events and sends more than the stream takes: 32 senders of
// pre-built 500-event requests, so the senders' own speed (the race
// detector's, a busy machine's) does not decide whether the server is
// saturated. Requests past the limit get 503 with Retry-After and are
// resent after it; nothing acknowledged is lost and nothing refused is
// counted. The 503s the clients saw equal the server's
// pulse_ingest_requests_total{code="503"}.
func TestStreamSaturated(t *testing.T) {
	rs := redistest.Start(t)
	// Requests of 500 events against --max-inflight 500 are admitted one
	// at a time; with no wait for room, every request that comes while
	// another is being made durable gets its 503. With the default wait
	// (50 ms), a fast disk makes every request durable in time and the
	// test would see none.
	s := newServer(t, "--redis", rs.URL(), "--max-inflight", "500", "--admit-wait", "1ns", "--rate-ip", "-1", "--rate-site", "-1")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	now := time.Now()
	tr := newTruth()
	srv := func() *server { return s }

	type request struct {
		body []byte
		ua   string
		evs  []genEvent
	}
	r := rand.New(rand.NewPCG(uint64(now.UnixNano()), 3))
	reqs := make(chan request, 120)
	for i := 0; i < cap(reqs); i++ {
		ua := r.IntN(len(userAgents))
		var q request
		for j := 0; j < 500; j++ {
			e := newGenEvent(r, 0, now, ua)
			e.ID = fmt.Sprintf("sat-%d-%d", i, j)
			q.evs = append(q.evs, e)
			q.body = append(append(q.body, e.json()...), '\n')
		}
		q.ua = userAgents[ua].UA
		reqs <- q
	}
	close(reqs)
	l := &loader{t: t, target: srv, tr: tr, now: now}
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := range reqs {
				n, err := l.send(ctx, q.body, q.ua)
				if err != nil || n != len(q.evs) {
					l.fail(fmt.Errorf("collect: accepted %d of %d: %v", n, len(q.evs), err))
					return
				}
				for _, e := range q.evs {
					tr.add(e)
				}
				l.requests.Add(1)
			}
		}()
	}
	wg.Wait()
	if len(l.errs) > 0 {
		t.Fatal(l.errs[0])
	}
	if l.refused.Load() == 0 {
		t.Fatalf("no 503 in %d requests of 500 events with --max-inflight 500: the admission limit did not hold", l.requests.Load())
	}
	if n := l.noRetry.Load(); n > 0 {
		t.Errorf("%d 503 answers without a valid Retry-After", n)
	}
	if n := l.limited.Load(); n > 0 {
		t.Errorf("%d 429 answers with rate limits off", n)
	}
	served := metricValue(t, s, `pulse_ingest_requests_total{code="503"}`)
	if int64(served) != l.refused.Load() {
		t.Errorf("server counted %v 503s, clients saw %d", served, l.refused.Load())
	}
	if v := metricValue(t, s, `pulse_ingest_overload_total`); v == 0 {
		t.Errorf("pulse_ingest_overload_total is 0 after %d 503s", l.refused.Load())
	}
	t.Logf("%d events acknowledged in %d requests, %d requests refused with 503 and resent", tr.size(), l.requests.Load(), l.refused.Load())
	waitExact(ctx, t, srv, tr, now)
}
