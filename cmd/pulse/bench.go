package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/pulsehq/pulse/loadgen"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure Pulse on this machine (load only to 127.0.0.1, bounded in time)",
		Commands: append([]*cli.Command{
			{
				Name:  "ingest",
				Usage: "beacon ingest through the durable path, beside a bare net/http handler answering 204",
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "duration", Value: 5 * time.Second, Usage: "length of each phase"},
					&cli.IntFlag{Name: "concurrency", Value: 64, Usage: "client connections"},
					&cli.IntFlag{Name: "batch", Value: 50, Usage: "events per request in the batch phase"},
					&cli.StringFlag{Name: "roles", Value: "ingest", Usage: "roles of the measured pulse serve"},
					&cli.StringFlag{Name: "redis", Value: "embedded", Usage: "--redis of the measured pulse serve"},
					&cli.StringFlag{Name: "admin-addr", Usage: "--admin-addr of the measured pulse serve, to profile it under the load (pprof)"},
				},
				Action: benchIngest,
			},
			{
				Name:   "baseline-server",
				Usage:  "a bare net/http server answering 204 (the ingest baseline)",
				Hidden: true,
				Flags:  []cli.Flag{&cli.StringFlag{Name: "addr", Value: "127.0.0.1:0"}},
				Action: func(ctx context.Context, c *cli.Command) error {
					srv := &http.Server{Addr: c.String("addr"), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						_, _ = io.Copy(io.Discard, r.Body)
						w.WriteHeader(http.StatusNoContent)
					})}
					go func() { <-ctx.Done(); srv.Close() }()
					return srv.ListenAndServe()
				},
			},
		}, wsBenchCommands()...),
	}
}

// child is a pulse subprocess the bench measures.
type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(ctx context.Context, healthPath string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.CommandContext(ctx, self, append(args, "--addr", addr)...)
	cmd.Stderr = nil
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %v: %w", args, err)
	}
	c := &child{cmd: cmd, addr: addr}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + healthPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return c, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.stop()
	return nil, fmt.Errorf("%v did not start", args)
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// rssKiB reads the resident set size of pid from /proc.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}

// peakRSS samples the RSS of pid until stop is closed and returns the peak.
func peakRSS(pid int, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if r := rssKiB(pid); r > peak {
				peak = r
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

func benchIngest(ctx context.Context, c *cli.Command) error {
	dur := c.Duration("duration")
	conc := int(c.Int("concurrency"))
	batch := int(c.Int("batch"))

	base, err := startChild(ctx, "/", "bench", "baseline-server")
	if err != nil {
		return err
	}
	defer base.stop()
	data, err := os.MkdirTemp("", "pulse-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	args := []string{"serve", "--data", data, "--roles", c.String("roles"),
		"--redis", c.String("redis"), "--rate-ip", "-1", "--rate-site", "-1", "--read-token", "bench", "--admin-token", "bench-admin", "--log-level", "warn"}
	if a := c.String("admin-addr"); a != "" {
		args = append(args, "--admin-addr", a)
	}
	p, err := startChild(ctx, "/healthz", args...)
	if err != nil {
		return err
	}
	defer p.stop()
	time.Sleep(500 * time.Millisecond)
	restRSS := rssKiB(p.cmd.Process.Pid)

	var seq atomic.Int64
	single := func(int64) ([]byte, int) { return benchEvents(&seq, 1), 1 }
	batched := func(int64) ([]byte, int) { return benchEvents(&seq, batch), batch }

	run := func(url string, rate float64, body func(int64) ([]byte, int)) (loadgen.Result, error) {
		r, err := loadgen.Run(ctx, loadgen.Config{URL: url, Concurrency: conc, Duration: dur, Rate: rate, Body: body})
		if err != nil {
			return r, err
		}
		if r.Errors > 0 || r.Status[http.StatusServiceUnavailable] > 0 {
			fmt.Fprintf(os.Stderr, "note: %s: %d transport errors, statuses %v\n", url, r.Errors, r.Status)
		}
		return r, nil
	}
	fmt.Fprintf(os.Stderr, "bench ingest: %s per phase, %d connections, pulse roles %s, redis %s\n", dur, conc, c.String("roles"), c.String("redis"))

	cpu0 := cpuOf(base.cmd.Process.Pid)
	baseRes, err := run("http://"+base.addr+"/", 0, single)
	if err != nil {
		return err
	}
	baseCPU := cpuOf(base.cmd.Process.Pid) - cpu0
	stopRSS := make(chan struct{})
	rssCh := peakRSS(p.cmd.Process.Pid, stopRSS)
	cpu0 = cpuOf(p.cmd.Process.Pid)
	singleRes, err := run("http://"+p.addr+"/v1/collect", 0, single)
	if err != nil {
		return err
	}
	cpu1 := cpuOf(p.cmd.Process.Pid)
	singleCPU := cpu1 - cpu0
	batchRes, err := run("http://"+p.addr+"/v1/collect", 0, batched)
	if err != nil {
		return err
	}
	batchCPU := cpuOf(p.cmd.Process.Pid) - cpu1
	rate := 0.7 * singleRes.RequestsPerSec()
	latRes, err := run("http://"+p.addr+"/v1/collect", rate, single)
	if err != nil {
		return err
	}
	rate50 := 0.7 * batchRes.RequestsPerSec()
	lat50Res, err := run("http://"+p.addr+"/v1/collect", rate50, batched)
	if err != nil {
		return err
	}
	close(stopRSS)
	peak := <-rssCh

	fmt.Printf("| measurement | value |\n|---|---|\n")
	fmt.Printf("| bare net/http 204, 1-event requests/s | %.0f |\n", baseRes.RequestsPerSec())
	fmt.Printf("| pulse /v1/collect, 1-event requests/s (202 = durable) | %.0f |\n", singleRes.RequestsPerSec())
	fmt.Printf("| ratio pulse / bare | %.2f |\n", singleRes.RequestsPerSec()/baseRes.RequestsPerSec())
	fmt.Printf("| pulse /v1/collect, %d-event batches: events/s | %.0f (%.0f requests/s) |\n", batch, batchRes.EventsPerSec(), batchRes.RequestsPerSec())
	fmt.Printf("| 1-event at 70%% of peak (%.0f req/s): p50 / p99 | %s / %s |\n", rate, latRes.Percentile(50).Round(10*time.Microsecond), latRes.Percentile(99).Round(10*time.Microsecond))
	fmt.Printf("| %d-event at 70%% of peak (%.0f req/s): p50 / p99 | %s / %s |\n", batch, rate50, lat50Res.Percentile(50).Round(10*time.Microsecond), lat50Res.Percentile(99).Round(10*time.Microsecond))
	fmt.Printf("| pulse RSS at rest / peak under load | %.1f MiB / %.1f MiB |\n", float64(restRSS)/1024, float64(peak)/1024)
	// CPU per request of each server, from /proc: unlike the rates, it
	// hardly depends on what else the machine runs.
	perReq := func(d time.Duration, n int64) string {
		return fmt.Sprintf("%.1f µs", float64(d.Microseconds())/float64(max(1, n)))
	}
	fmt.Printf("| server CPU per 1-event request: bare / pulse | %s / %s |\n", perReq(baseCPU, baseRes.Requests), perReq(singleCPU, singleRes.Requests))
	fmt.Printf("| pulse CPU per event in %d-event batches | %s |\n", batch, perReq(batchCPU, batchRes.Events))
	return nil
}

// cpuOf returns the user + system CPU time pid has used, from
// /proc/PID/stat (in clock ticks of 10 ms), 0 when it cannot be read.
func cpuOf(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis. utime and stime are fields 14, 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// benchEvents builds a body of n pageview events with fresh ids, as a JSON
// array like the tracker sends.
func benchEvents(seq *atomic.Int64, n int) []byte {
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
