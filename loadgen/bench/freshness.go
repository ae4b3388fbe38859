package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pulsehq/pulse/loadgen"
)

// FreshnessConfig is a run of Freshness.
type FreshnessConfig struct {
	Rates       []float64     // ingest rates, events/s, one run each
	Duration    time.Duration // length of each rate's run
	Batch       int           // events per request
	Concurrency int           // ingest connections
}

// ParseRates parses the --rate flag of `pulse bench freshness`:
// comma-separated positive events/s.
func ParseRates(s string) ([]float64, error) {
	var rates []float64
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("--rate %q: want comma-separated positive events/s, e.g. 10000,50000", s)
		}
		rates = append(rates, r)
	}
	return rates, nil
}

// Freshness measures the time from an event's 202 to the first delta that
// covers it, at sustained ingest rates, with one subscriber of an embedded
// pulse serve: one table row per rate, each on a site of its own.
func Freshness(ctx context.Context, env Env, cfg FreshnessConfig) error {
	if _, err := raiseNoFile(); err != nil {
		fmt.Fprintf(env.Log, "note: %v\n", err)
	}
	data, err := os.MkdirTemp("", "pulse-bench-fresh-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	p, err := startChild(ctx, env.Pulse, "/readyz", serveArgs(data)...)
	if err != nil {
		return err
	}
	defer p.stop()
	fmt.Fprintf(env.Log, "bench freshness: pulse serve (embedded) on %s, %s per rate, %d-event batches, %d connections, load average %s\n", p.addr, cfg.Duration, cfg.Batch, cfg.Concurrency, loadAvg())

	fmt.Fprintf(env.Out, "| target events/s | achieved events/s | 202s | 503s | other failures | 202 latency p50 / p99 | freshness p50 | p99 | max | acks never covered | load avg (1m) |\n")
	fmt.Fprintf(env.Out, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	var seq atomic.Int64
	for _, rate := range cfg.Rates {
		row, err := freshnessAt(ctx, env, cfg, p.addr, rate, &seq)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Out, row)
	}
	return nil
}

// freshnessAt subscribes to a fresh site, feeds it at rate and returns the
// table row.
func freshnessAt(ctx context.Context, env Env, cfg FreshnessConfig, addr string, rate float64, seq *atomic.Int64) (string, error) {
	site := "bench-" + randHex(4)
	fleet, err := loadgen.DialFleet(ctx, loadgen.FleetConfig{
		URL:         "ws://" + addr + "/v1/ws?token=" + readToken,
		Clients:     1,
		Protocol:    loadgen.PulseProtocol{Site: site, Metric: "events", Step: "10s", Window: "15m"},
		MaxReadings: 1 << 16,
	})
	if err != nil {
		return "", fmt.Errorf("subscribe to %s: %w", site, err)
	}
	defer fleet.Close()
	fleet.Record(true)
	acks, st, err := loadgen.Feed(ctx, loadgen.FeedConfig{
		URL:         "http://" + addr + "/v1/collect",
		Header:      browserHeader(),
		Concurrency: cfg.Concurrency,
		Rate:        rate / float64(cfg.Batch),
		Duration:    cfg.Duration,
		Body:        func(int64) ([]byte, int) { return pushEvents(seq, site, cfg.Batch), cfg.Batch },
	})
	if err != nil {
		return "", err
	}
	// Let the last acknowledged events reach the subscriber, boundedly.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		r := fleet.Readings(0)
		if len(r) > 0 && r[len(r)-1].Total >= st.Events {
			break
		}
	}
	fleet.Close()
	lags, missed := loadgen.Lags(loadgen.AckMarks(acks), fleet.Readings(0))
	d := loadgen.SortedDurations(lags)
	other := st.Failed - st.Status[http.StatusServiceUnavailable]
	ackLat := ackLatencies(acks)
	fs := fleet.Stats()
	if fs.Errors > 0 {
		fmt.Fprintf(env.Log, "note: subscriber failed: %v\n", fs.FirstErr)
	}
	fmt.Fprintf(env.Log, "%.0f events/s: the subscriber got %d deltas, %d bytes\n", rate, fs.Pushes, fs.Bytes)
	return fmt.Sprintf("| %.0f | %.0f | %d | %d | %d | %s / %s | %s | %s | %s | %d | %s |",
		rate, st.EventsPerSec(), st.Status[http.StatusAccepted], st.Status[http.StatusServiceUnavailable], other,
		round(ackLat.Percentile(50)), round(ackLat.Percentile(99)), round(d.Percentile(50)), round(d.Percentile(99)), round(d.Percentile(100)), missed, loadAvg()), nil
}

// ackLatencies returns each request's time from its scheduled send to its
// answer, sorted.
func ackLatencies(acks []loadgen.Ack) loadgen.Durations {
	d := make([]time.Duration, 0, len(acks))
	for _, a := range acks {
		d = append(d, a.Done.Sub(a.Sent))
	}
	return loadgen.SortedDurations(d)
}

// pushEvents builds a body of n events of site with fresh ids and the
// current time, so they land in the live buckets.
func pushEvents(seq *atomic.Int64, site string, n int) []byte {
	b := make([]byte, 0, n*160)
	b = append(b, '[')
	now := time.Now().UnixMilli()
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		id := seq.Add(1)
		b = fmt.Appendf(b, `{"id":"%s-%d","site":"%s","type":"pageview","ts":%d,"url":"https://example.com/p/%d","uid":"u-%d"}`, site, id, site, now, id%100, id%1000)
	}
	return append(b, ']')
}
