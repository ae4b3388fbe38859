package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadConfig shapes the load of the fault tests.
type loadConfig struct {
	Workers  int           // concurrent senders (default 3)
	Events   int           // events per request (default 10)
	Pause    time.Duration // between a worker's requests (default 10ms; negative: none)
	Resend   int           // one request in Resend resends an acknowledged event (client retry); 0: never
	Seed     uint64
	IDPrefix string
}

// loader sends generated events to a server's /v1/collect as trackers do:
// a request without an answer (transport error, torn body) is resent with
// the same ids, a 503 or 429 is resent after its Retry-After. Every 202 adds
// its events to the truth. It counts what a fault test asserts on.
type loader struct {
	t      testing.TB
	target func() *server
	tr     *truth
	now    time.Time
	cfg    loadConfig

	acked      atomic.Int64 // events in 202 answers (retried copies included)
	requests   atomic.Int64 // requests answered 202
	refused    atomic.Int64 // 503 answers
	limited    atomic.Int64 // 429 answers
	noRetry    atomic.Int64 // 503/429 answers without a valid Retry-After
	unanswered atomic.Int64 // transport errors and torn bodies (resent)

	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

// startLoad starts cfg.Workers senders against target() (looked up per
// request, so a test may replace the server) until Stop.
func startLoad(ctx context.Context, t testing.TB, target func() *server, tr *truth, now time.Time, cfg loadConfig) *loader {
	if cfg.Workers <= 0 {
		cfg.Workers = 3
	}
	if cfg.Events <= 0 {
		cfg.Events = 10
	}
	if cfg.Pause == 0 {
		cfg.Pause = 10 * time.Millisecond
	}
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = "ld"
	}
	l := &loader{t: t, target: target, tr: tr, now: now, cfg: cfg, stop: make(chan struct{})}
	for w := 0; w < cfg.Workers; w++ {
		l.wg.Add(1)
		go l.work(ctx, w)
	}
	return l
}

// Stop ends the load once every worker's request in flight is answered,
// and returns the first error a worker met (an unexpected answer).
func (l *loader) Stop() error {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) > 0 {
		return l.errs[0]
	}
	return nil
}

func (l *loader) fail(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *loader) work(ctx context.Context, w int) {
	defer l.wg.Done()
	r := rand.New(rand.NewPCG(l.cfg.Seed, uint64(w)+100))
	var sent []genEvent
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		ua := r.IntN(len(userAgents))
		var evs []genEvent
		var body []byte
		for j := 0; j < l.cfg.Events; j++ {
			e := newGenEvent(r, 0, l.now, ua)
			e.ID = fmt.Sprintf("%s-%d-%d-%d", l.cfg.IDPrefix, w, i, j)
			if l.cfg.Resend > 0 && len(sent) > 0 && r.IntN(l.cfg.Resend) == 0 {
				if old := sent[r.IntN(len(sent))]; old.UA == e.UA {
					e = old // a client retry of an acknowledged event
				}
			}
			evs = append(evs, e)
			body = append(append(body, e.json()...), '\n')
		}
		n, err := l.send(ctx, body, userAgents[ua].UA)
		if err != nil {
			if ctx.Err() == nil {
				l.fail(err)
			}
			return
		}
		if n != len(evs) {
			l.fail(fmt.Errorf("collect accepted %d of %d valid events", n, len(evs)))
			return
		}
		for _, e := range evs {
			l.tr.add(e)
		}
		if len(sent) < 2000 {
			sent = append(sent, evs...)
		}
		l.acked.Add(int64(n))
		l.requests.Add(1)
		if l.cfg.Pause > 0 {
			time.Sleep(l.cfg.Pause)
		}
	}
}

// send posts body until it is answered 202 and returns how many events
// were accepted. Any answer but 202, 503 and 429 is an error.
func (l *loader) send(ctx context.Context, body []byte, ua string) (int, error) {
	for {
		s := l.target()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url("/v1/collect"), bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("User-Agent", ua)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			l.unanswered.Add(1)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusServiceUnavailable, http.StatusTooManyRequests:
			if resp.StatusCode == http.StatusServiceUnavailable {
				l.refused.Add(1)
			} else {
				l.limited.Add(1)
			}
			secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || secs < 1 {
				l.noRetry.Add(1)
				secs = 1
			}
			select {
			case <-time.After(time.Duration(secs) * time.Second):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			continue
		case http.StatusAccepted:
		default:
			if rerr != nil {
				l.unanswered.Add(1)
				continue
			}
			return 0, fmt.Errorf("collect answered %s: %s", resp.Status, b)
		}
		var res collectResult
		if rerr != nil || json.Unmarshal(b, &res) != nil {
			// A process killed mid-answer can leave a torn body: resend.
			l.unanswered.Add(1)
			continue
		}
		return res.Accepted, nil
	}
}

// waitExact polls every aggregate until it equals the truth, or fails the
// test when ctx ends, naming the differences.
func waitExact(ctx context.Context, t *testing.T, s func() *server, tr *truth, now time.Time) {
	t.Helper()
	var last string
	var lastErr error
	for {
		last, lastErr = checkAll(ctx, t, s(), tr, now)
		if lastErr == nil && last == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("aggregates differ from the ground truth (%d events acknowledged): %v %s", tr.size(), lastErr, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// counted is the sum of the events and bots metrics at step 1d over the
// test's range, on every site: each distinct acknowledged event counts in
// exactly one of them.
func counted(ctx context.Context, s *server, now time.Time) (int64, error) {
	var n int64
	from := now.Add(-2 * time.Hour).UnixMilli()
	from -= from % 86_400_000
	to := time.Now().Add(time.Hour).UnixMilli()
	for _, site := range sites {
		for _, m := range []string{"events", "bots"} {
			var got queryResult
			if err := s.get(ctx, "/v1/query", queryValues(site, m, "1d", "", from, to), &got); err != nil {
				return 0, err
			}
			for _, se := range got.Series {
				for _, p := range se.Points {
					n += int64(p[1])
				}
			}
		}
	}
	return n, nil
}

// metricValue reads one sample of a server's /metrics ("name{labels}" as
// exposed), 0 when absent.
func metricValue(t *testing.T, s *server, sample string) float64 {
	t.Helper()
	resp, err := http.Get(s.url("/metrics"))
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte(sample+" ")); ok {
			v, err := strconv.ParseFloat(string(bytes.TrimSpace(rest)), 64)
			if err != nil {
				t.Fatalf("metric %s: %q", sample, line)
			}
			return v
		}
	}
	return 0
}
