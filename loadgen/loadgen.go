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
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		res      = Result{Status: map[int]int64{}}
		wg       sync.WaitGroup
		start    = time.Now()
		interval time.Duration
	)
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			status := map[int]int64{}
			var reqs, events, errs int64
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if cfg.MaxRequests > 0 && i >= cfg.MaxRequests {
					break
				}
				sched := time.Now()
				if interval > 0 {
					sched = start.Add(time.Duration(i) * interval)
					if d := time.Until(sched); d > 0 {
						select {
						case <-ctx.Done():
						case <-time.After(d):
						}
						if ctx.Err() != nil {
							break
						}
					}
				}
				body, n := cfg.Body(i)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(body))
				if err != nil {
					errs++
					continue
				}
				req.Header.Set("Content-Type", cfg.ContentType)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				reqs++
				status[resp.StatusCode]++
				if resp.StatusCode/100 == 2 {
					events += int64(n)
				}
				lat = append(lat, time.Since(sched))
			}
			mu.Lock()
			res.Requests += reqs
			res.Events += events
			res.Errors += errs
			for k, v := range status {
				res.Status[k] += v
			}
			res.latencies = append(res.latencies, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	if cfg.Duration < res.Elapsed && cfg.MaxRequests == 0 {
		res.Elapsed = cfg.Duration
	}
	sort.Slice(res.latencies, func(a, b int) bool { return res.latencies[a] < res.latencies[b] })
	return res, nil
}
