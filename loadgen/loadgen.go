// Package loadgen is Pulse's HTTP load tool: it drives a target with a
// closed loop (as fast as the target answers, for peak throughput) or an
// open loop at a fixed rate (for latency at a given load, measured from
// each request's scheduled time so a stalled target cannot hide its queue),
// and reports throughput and latency percentiles. It only targets addresses
// the caller gives it; the bench command gives it 127.0.0.1.
package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Config says what to send and how hard.
type Config struct {
	URL         string
	Concurrency int           // workers (connections); default 32
	Duration    time.Duration // default 5s
	Rate        float64       // requests/s for an open loop; 0 runs a closed loop
	MaxRequests int64         // stop after this many requests; 0 means no limit
	// Body returns the body of request i and the events it carries.
	Body        func(i int64) ([]byte, int)
	ContentType string // default text/plain, as navigator.sendBeacon sends
}

// Result is what a run measured.
type Result struct {
	Requests  int64
	Events    int64 // events in requests answered 2xx
	Errors    int64 // transport errors
	Status    map[int]int64
	Elapsed   time.Duration
	latencies []time.Duration
}

// RequestsPerSec is the rate of answered requests.
func (r Result) RequestsPerSec() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// EventsPerSec is the rate of events in 2xx answers.
func (r Result) EventsPerSec() float64 { return float64(r.Events) / r.Elapsed.Seconds() }

// Percentile returns the p-th latency percentile (0 < p <= 100).
func (r Result) Percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies))*p/100+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(r.latencies) {
		i = len(r.latencies) - 1
	}
	return r.latencies[i]
}

// Run drives the target until the duration or request limit is reached.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.ContentType == "" {
		cfg.ContentType = "text/plain"
	}
	if cfg.Body == nil {
		return Result{}, fmt.Errorf("loadgen: no Body")
	}
	tr := &http.Transport{MaxIdleConns: cfg.Concurrency, MaxIdleConnsPerHost: cfg.Concurrency, MaxConnsPerHost: cfg.Concurrency, DisableCompression: true}
	defer tr.CloseIdleConnections()
	l := &loop{cfg: cfg, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, start: time.Now()}
	if cfg.Rate > 0 {
		l.interval = time.Duration(float64(time.Second) / cfg.Rate)
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var (
		mu  sync.Mutex
		res = Result{Status: map[int]int64{}}
		wg  sync.WaitGroup
	)
	for range cfg.Concurrency {
		wg.Go(func() {
			w := l.work(ctx)
			mu.Lock()
			res.add(w)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(l.start)
	if cfg.Duration < res.Elapsed && cfg.MaxRequests == 0 {
		res.Elapsed = cfg.Duration
	}
	sort.Slice(res.latencies, func(a, b int) bool { return res.latencies[a] < res.latencies[b] })
	return res, nil
}

// loop is the state the workers of one Run share: request i of all
// workers is scheduled at start + i*interval in the open loop.
type loop struct {
	cfg      Config
	client   *http.Client
	start    time.Time
	interval time.Duration
	next     atomic.Int64
}

// add merges one worker's counts into r.
func (r *Result) add(w Result) {
	r.Requests += w.Requests
	r.Events += w.Events
	r.Errors += w.Errors
	for k, v := range w.Status {
		r.Status[k] += v
	}
	r.latencies = append(r.latencies, w.latencies...)
}

// work sends requests until ctx ends or the request budget is spent, and
// returns its own counts, so workers share no lock per request.
func (l *loop) work(ctx context.Context) Result {
	w := Result{Status: map[int]int64{}}
	for ctx.Err() == nil {
		i := l.next.Add(1) - 1
		if l.cfg.MaxRequests > 0 && i >= l.cfg.MaxRequests {
			break
		}
		sched := time.Now()
		if l.interval > 0 {
			sched = l.start.Add(time.Duration(i) * l.interval)
			if !sleepUntil(ctx, sched) {
				break
			}
		}
		body, n := l.cfg.Body(i)
		status, err := l.send(ctx, body)
		if err != nil {
			if ctx.Err() == nil {
				w.Errors++
			}
			continue
		}
		w.Requests++
		w.Status[status]++
		if status/100 == 2 {
			w.Events += int64(n)
		}
		w.latencies = append(w.latencies, time.Since(sched))
	}
	return w
}

// sleepUntil waits for t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// send posts one body and returns the status, the body read to its end so
// the connection is reused.
func (l *loop) send(ctx context.Context, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build request to %s: %w", l.cfg.URL, err)
	}
	req.Header.Set("Content-Type", l.cfg.ContentType)
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post to %s: %w", l.cfg.URL, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
