package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// FeedConfig says what a Feed publishes and how fast. A Feed is an open loop
// like Run's, but it keeps every request's times, which the push benchmarks
// match against what subscribers receive (Run only keeps latencies).
type FeedConfig struct {
	URL         string
	Header      http.Header   // added to every request (an API key)
	Concurrency int           // workers (connections); default 8
	Rate        float64       // requests/s; required
	Duration    time.Duration // default 5s
	// Body returns the body of request i and the units (events, messages) it
	// publishes.
	Body        func(i int64) ([]byte, int)
	ContentType string // default text/plain
	// Accept says whether a 2xx answer body means success (Centrifugo answers
	// 200 with an error object); nil accepts every 2xx.
	Accept func(body []byte) bool
}

// Ack is one request of a Feed.
type Ack struct {
	Index  int64
	Sent   time.Time // scheduled send time (open loop: a late sender is charged)
	Done   time.Time // answer received
	Events int
	Status int  // HTTP status, 0 on a transport error
	Failed bool // a transport error, or a 2xx that Accept refused
}

// OK reports whether the request was answered 2xx and accepted.
func (a Ack) OK() bool { return a.Status/100 == 2 && !a.Failed }

// FeedStats sums up a Feed.
type FeedStats struct {
	Requests int64
	Events   int64 // units in OK requests
	Failed   int64
	Status   map[int]int64
	Elapsed  time.Duration
}

// EventsPerSec is the rate of units in OK requests.
func (s FeedStats) EventsPerSec() float64 { return float64(s.Events) / s.Elapsed.Seconds() }

// Summarize counts acks.
func Summarize(acks []Ack, elapsed time.Duration) FeedStats {
	s := FeedStats{Status: map[int]int64{}, Elapsed: elapsed}
	for _, a := range acks {
		s.Requests++
		s.Status[a.Status]++
		if a.OK() {
			s.Events += int64(a.Events)
		} else {
			s.Failed++
		}
	}
	return s
}

// Feed posts cfg.Body(i) at cfg.Rate requests/s for cfg.Duration and returns
// every request's Ack (in no particular order) and a summary. Requests still
// unanswered 10s after the end are abandoned and counted as failed.
func Feed(ctx context.Context, cfg FeedConfig) ([]Ack, FeedStats, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.ContentType == "" {
		cfg.ContentType = "text/plain"
	}
	if cfg.Body == nil || cfg.Rate <= 0 {
		return nil, FeedStats{}, fmt.Errorf("loadgen: feed needs a Body and a Rate")
	}
	tr := &http.Transport{MaxIdleConns: cfg.Concurrency, MaxIdleConnsPerHost: cfg.Concurrency, MaxConnsPerHost: cfg.Concurrency, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	total := int64(cfg.Rate * cfg.Duration.Seconds())
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	var (
		next  atomic.Int64
		mu    sync.Mutex
		acks  = make([]Ack, 0, total)
		wg    sync.WaitGroup
		start = time.Now()
	)
	sendCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []Ack
			for {
				i := next.Add(1) - 1
				if i >= total {
					break
				}
				sched := start.Add(time.Duration(i) * interval)
				if d := time.Until(sched); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-sendCtx.Done():
					case <-t.C:
					}
					t.Stop()
				}
				if sendCtx.Err() != nil {
					break
				}
				body, n := cfg.Body(i)
				mine = append(mine, feedOne(ctx, client, cfg, i, sched, body, n))
			}
			mu.Lock()
			acks = append(acks, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	// The schedule spans exactly Duration; the last request may be answered
	// before its end, and that must not inflate the rate.
	return acks, Summarize(acks, cfg.Duration), nil
}

func feedOne(ctx context.Context, client *http.Client, cfg FeedConfig, i int64, sched time.Time, body []byte, n int) Ack {
	a := Ack{Index: i, Sent: sched, Events: n}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(body))
	if err != nil {
		a.Failed, a.Done = true, time.Now()
		return a
	}
	req.Header.Set("Content-Type", cfg.ContentType)
	for k, v := range cfg.Header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		a.Failed, a.Done = true, time.Now()
		return a
	}
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	a.Done, a.Status = time.Now(), resp.StatusCode
	if err != nil || (a.Status/100 == 2 && cfg.Accept != nil && !cfg.Accept(rb)) {
		a.Failed = true
	}
	return a
}
