package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pulsehq/pulse/loadgen"
)

// IngestConfig is a run of Ingest.
type IngestConfig struct {
	Duration    time.Duration // length of each phase
	Concurrency int           // client connections
	Batch       int           // events per request in the batch phases
	Roles       string        // --roles of the measured pulse serve
	Redis       string        // --redis of the measured pulse serve
	AdminAddr   string        // --admin-addr of the measured pulse serve, to profile it under load; empty: none
}

// Ingest measures beacon ingest through the durable path of a pulse serve
// beside a bare net/http server answering 204 (ServeBaseline): peak
// requests/s with 1-event and batched requests, latency at 70% of each
// peak, RSS, and the CPU each server spends per request.
func Ingest(ctx context.Context, env Env, cfg IngestConfig) error {
	base, err := startChild(ctx, env.Pulse, "/", "bench", "baseline-server")
	if err != nil {
		return err
	}
	defer base.stop()
	data, err := os.MkdirTemp("", "pulse-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	args := []string{"serve", "--data", data, "--roles", cfg.Roles,
		"--redis", cfg.Redis, "--rate-ip", "-1", "--rate-site", "-1", "--sites", "bench", "--read-token", readToken, "--admin-token", adminToken, "--log-level", "warn"}
	if cfg.AdminAddr != "" {
		args = append(args, "--admin-addr", cfg.AdminAddr)
	}
	p, err := startChild(ctx, env.Pulse, "/healthz", args...)
	if err != nil {
		return err
	}
	defer p.stop()
	time.Sleep(500 * time.Millisecond) // let it settle before the rest measurement
	rest := rssKiB(p.pid())
	fmt.Fprintf(env.Log, "bench ingest: %s per phase, %d connections, pulse roles %s, redis %s\n", cfg.Duration, cfg.Concurrency, cfg.Roles, cfg.Redis)
	r := ingestRun{ctx: ctx, log: env.Log, cfg: cfg}
	f, err := r.measure(base, p)
	if err != nil {
		return err
	}
	f.restRSS = rest
	f.print(env.Out, cfg.Batch)
	return nil
}

// ingestRun runs the load phases of one Ingest.
type ingestRun struct {
	ctx context.Context
	log io.Writer
	cfg IngestConfig
	seq atomic.Int64 // event ids, unique across phases
}

// ingestFigures are what Ingest reports.
type ingestFigures struct {
	base, single, batch, lat1, latN loadgen.Result
	rate1, rateN                    float64 // the open-loop rates of lat1 and latN
	baseCPU, singleCPU, batchCPU    time.Duration
	restRSS, peakRSS                int64 // KiB
}

func (r *ingestRun) single(int64) ([]byte, int) { return ingestEvents(&r.seq, 1), 1 }

func (r *ingestRun) batched(int64) ([]byte, int) {
	return ingestEvents(&r.seq, r.cfg.Batch), r.cfg.Batch
}

// phase drives url for a phase, in a closed loop when rate is 0.
func (r *ingestRun) phase(url string, rate float64, body func(int64) ([]byte, int)) (loadgen.Result, error) {
	res, err := loadgen.Run(r.ctx, loadgen.Config{URL: url, Concurrency: r.cfg.Concurrency, Duration: r.cfg.Duration, Rate: rate, Body: body})
	if err != nil {
		return res, err
	}
	if res.Errors > 0 || res.Status[http.StatusServiceUnavailable] > 0 {
		fmt.Fprintf(r.log, "note: %s: %d transport errors, statuses %v\n", url, res.Errors, res.Status)
	}
	return res, nil
}

// measure runs the phases in order: the baseline's peak, pulse's peak with
// 1-event and with batched requests (sampling its RSS throughout), then
// each at 70% of its peak for the latency.
func (r *ingestRun) measure(base, p *child) (ingestFigures, error) {
	var f ingestFigures
	var err error
	collect := "http://" + p.addr + "/v1/collect"
	cpu0 := cpuOf(base.pid())
	if f.base, err = r.phase("http://"+base.addr+"/", 0, r.single); err != nil {
		return f, err
	}
	f.baseCPU = cpuOf(base.pid()) - cpu0
	stopRSS := make(chan struct{})
	peak := peakRSS(p.pid(), stopRSS)
	defer func() {
		if stopRSS != nil {
			close(stopRSS)
		}
	}()
	cpu0 = cpuOf(p.pid())
	if f.single, err = r.phase(collect, 0, r.single); err != nil {
		return f, err
	}
	cpu1 := cpuOf(p.pid())
	f.singleCPU = cpu1 - cpu0
	if f.batch, err = r.phase(collect, 0, r.batched); err != nil {
		return f, err
	}
	f.batchCPU = cpuOf(p.pid()) - cpu1
	f.rate1 = 0.7 * f.single.RequestsPerSec()
	if f.lat1, err = r.phase(collect, f.rate1, r.single); err != nil {
		return f, err
	}
	f.rateN = 0.7 * f.batch.RequestsPerSec()
	if f.latN, err = r.phase(collect, f.rateN, r.batched); err != nil {
		return f, err
	}
	close(stopRSS)
	stopRSS = nil
	f.peakRSS = <-peak
	return f, nil
}

func (f ingestFigures) print(w io.Writer, batch int) {
	lat := func(r loadgen.Result) string {
		return fmt.Sprintf("%s / %s", r.Percentile(50).Round(10*time.Microsecond), r.Percentile(99).Round(10*time.Microsecond))
	}
	// CPU per request of each server, from /proc: unlike the rates, it
	// hardly depends on what else the machine runs.
	perReq := func(d time.Duration, n int64) string {
		return fmt.Sprintf("%.1f µs", float64(d.Microseconds())/float64(max(1, n)))
	}
	fmt.Fprintf(w, "| measurement | value |\n|---|---|\n")
	fmt.Fprintf(w, "| bare net/http 204, 1-event requests/s | %.0f |\n", f.base.RequestsPerSec())
	fmt.Fprintf(w, "| pulse /v1/collect, 1-event requests/s (202 = durable) | %.0f |\n", f.single.RequestsPerSec())
	fmt.Fprintf(w, "| ratio pulse / bare | %.2f |\n", f.single.RequestsPerSec()/f.base.RequestsPerSec())
	fmt.Fprintf(w, "| pulse /v1/collect, %d-event batches: events/s | %.0f (%.0f requests/s) |\n", batch, f.batch.EventsPerSec(), f.batch.RequestsPerSec())
	fmt.Fprintf(w, "| 1-event at 70%% of peak (%.0f req/s): p50 / p99 | %s |\n", f.rate1, lat(f.lat1))
	fmt.Fprintf(w, "| %d-event at 70%% of peak (%.0f req/s): p50 / p99 | %s |\n", batch, f.rateN, lat(f.latN))
	fmt.Fprintf(w, "| pulse RSS at rest / peak under load | %.1f MiB / %.1f MiB |\n", float64(f.restRSS)/1024, float64(f.peakRSS)/1024)
	fmt.Fprintf(w, "| server CPU per 1-event request: bare / pulse | %s / %s |\n", perReq(f.baseCPU, f.base.Requests), perReq(f.singleCPU, f.single.Requests))
	fmt.Fprintf(w, "| pulse CPU per event in %d-event batches | %s |\n", batch, perReq(f.batchCPU, f.batch.Events))
}

// BaselineHandler answers every request 204 after reading its body: the
// least an HTTP server can do for a beacon, the baseline of Ingest.
func BaselineHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
}

// ServeBaseline serves BaselineHandler on addr until ctx ends.
func ServeBaseline(ctx context.Context, addr string) error {
	srv := &http.Server{Addr: addr, Handler: BaselineHandler()}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	return srv.ListenAndServe()
}

// ingestEvents builds a body of n pageview events of site "bench" with
// fresh ids, as a JSON array like the tracker sends.
func ingestEvents(seq *atomic.Int64, n int) []byte {
	var b strings.Builder
	b.Grow(n * 200)
	b.WriteByte('[')
	now := time.Now().UnixMilli()
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		id := seq.Add(1)
		fmt.Fprintf(&b, `{"id":"b-%d","site":"bench","type":"pageview","ts":%d,"url":"https://example.com/p/%d","uid":"u-%d"}`, id, now, id%1000, id%100000)
	}
	b.WriteByte(']')
	return []byte(b.String())
}
