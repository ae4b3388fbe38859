package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/pulsehq/pulse/loadgen"
)

// pushFlushRate is how many deltas per second one subscription can get: the
// hub flushes every 50 ms.
const pushFlushRate = 20

// browserHeader is sent with every bench event: Pulse flags a non-browser
// User-Agent (Go's default among them) as a bot and counts it in the "bots"
// metric instead of "events".
func browserHeader() http.Header {
	return http.Header{"User-Agent": {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"}}
}

func wsBenchCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:  "freshness",
			Usage: "time from an event's 202 to the first delta that covers it, at sustained ingest rates (one subscriber, embedded mode)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "rate", Value: "10000,50000", Usage: "comma-separated ingest rates, events/s"},
				&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "length of each rate's run"},
				&cli.IntFlag{Name: "batch", Value: 50, Usage: "events per request"},
				&cli.IntFlag{Name: "concurrency", Value: 32, Usage: "ingest connections"},
			},
			Action: benchFreshness,
		},
		{
			Name:  "fanout",
			Usage: "many WebSocket subscribers to one metric: delivered messages/s, latency, RSS per connection; Centrifugo as a baseline",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "clients", Value: 10000, Usage: "concurrent subscribers"},
				&cli.FloatFlag{Name: "rate", Value: pushFlushRate, Usage: "published messages/s per channel (Pulse: ingest requests/s; at most 20 deltas/s reach a subscriber)"},
				&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "length of the publishing phase"},
				&cli.IntFlag{Name: "size", Value: 0, Usage: "bytes of a Centrifugo message frame (0: the mean size of Pulse's deltas in the same run)"},
				&cli.IntFlag{Name: "batch", Value: 5, Usage: "events per Pulse ingest request"},
				&cli.StringFlag{Name: "systems", Value: "pulse,centrifugo", Usage: "which servers to measure, in order"},
				&cli.StringFlag{Name: "centrifugo", Usage: "centrifugo binary (default $HOME/.cache/pulse/bin/centrifugo, then PATH)"},
				&cli.IntFlag{Name: "dial-concurrency", Value: 64, Usage: "WebSocket handshakes in flight while connecting"},
			},
			Action: benchFanout,
		},
	}
}

// pushTarget is a measured server: a child process and how to reach it.
type pushTarget struct {
	name     string
	pid      int
	wsURL    string
	protocol loadgen.WSProtocol
	feed     func(i int64) ([]byte, int) // publish request i
	feedCfg  loadgen.FeedConfig
	stop     func()
}

func benchFreshness(ctx context.Context, c *cli.Command) error {
	rates, err := parseRates(c.String("rate"))
	if err != nil {
		return err
	}
	dur := c.Duration("duration")
	batch := int(c.Int("batch"))
	conc := int(c.Int("concurrency"))
	if _, err := raiseNoFile(); err != nil {
		fmt.Fprintf(os.Stderr, "note: %v\n", err)
	}
	data, err := os.MkdirTemp("", "pulse-bench-fresh-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	p, err := startChild(ctx, "/readyz", pushServeArgs(data)...)
	if err != nil {
		return err
	}
	defer p.stop()
	fmt.Fprintf(os.Stderr, "bench freshness: pulse serve (embedded) on %s, %s per rate, %d-event batches, %d connections, load average %s\n", p.addr, dur, batch, conc, loadAvg())

	fmt.Printf("| target events/s | achieved events/s | 202s | 503s | other failures | 202 latency p50 / p99 | freshness p50 | p99 | max | acks never covered | load avg (1m) |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|\n")
	var seq atomic.Int64
	for _, rate := range rates {
		site := "bench-" + randHex(4)
		fleet, err := loadgen.DialFleet(ctx, loadgen.FleetConfig{
			URL:         "ws://" + p.addr + "/v1/ws?token=bench",
			Clients:     1,
			Protocol:    loadgen.PulseProtocol{Site: site, Metric: "events", Step: "10s", Window: "15m"},
			MaxReadings: 1 << 16,
		})
		if err != nil {
			return fmt.Errorf("subscribe to %s: %w", site, err)
		}
		fleet.Record(true)
		acks, st, err := loadgen.Feed(ctx, loadgen.FeedConfig{
			URL:         "http://" + p.addr + "/v1/collect",
			Header:      browserHeader(),
			Concurrency: conc,
			Rate:        rate / float64(batch),
			Duration:    dur,
			Body:        func(int64) ([]byte, int) { return pushEvents(&seq, site, batch), batch },
		})
		if err != nil {
			fleet.Close()
			return err
		}
		// Let the last acknowledged events reach the subscriber, boundedly.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			r := fleet.Readings(0)
			if len(r) > 0 && r[len(r)-1].Total >= st.Events {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		fleet.Close()
		lags, missed := loadgen.Lags(loadgen.AckMarks(acks), fleet.Readings(0))
		d := loadgen.SortedDurations(lags)
		other := st.Failed - st.Status[http.StatusServiceUnavailable]
		ackLat := ackLatencies(acks)
		fmt.Printf("| %.0f | %.0f | %d | %d | %d | %s / %s | %s | %s | %s | %d | %s |\n",
			rate, st.EventsPerSec(), st.Status[http.StatusAccepted], st.Status[http.StatusServiceUnavailable], other,
			round(ackLat.Percentile(50)), round(ackLat.Percentile(99)), round(d.Percentile(50)), round(d.Percentile(99)), round(d.Percentile(100)), missed, loadAvg())
		fs := fleet.Stats()
		if fs.Errors > 0 {
			fmt.Fprintf(os.Stderr, "note: subscriber failed: %v\n", fs.FirstErr)
		}
		fmt.Fprintf(os.Stderr, "%.0f events/s: the subscriber got %d deltas, %d bytes\n", rate, fs.Pushes, fs.Bytes)
	}
	return nil
}

func benchFanout(ctx context.Context, c *cli.Command) error {
	n := int(c.Int("clients"))
	rate := c.Float("rate")
	dur := c.Duration("duration")
	size := int(c.Int("size"))
	batch := int(c.Int("batch"))
	if n <= 0 || rate <= 0 || batch <= 0 {
		return errors.New("fanout: --clients, --rate and --batch must be positive")
	}
	limit, err := raiseNoFile()
	if err != nil {
		return err
	}
	if need := uint64(n) + 512; limit < need {
		return fmt.Errorf("fanout: open-file limit %d is below the %d that %d clients need; raise it (ulimit -n) or lower --clients", limit, need, n)
	}
	if rate > pushFlushRate {
		fmt.Fprintf(os.Stderr, "note: --rate %.0f is above Pulse's %d flushes/s: Pulse merges deltas, Centrifugo delivers each message\n", rate, pushFlushRate)
	}
	fmt.Fprintf(os.Stderr, "bench fanout: %d subscribers, %.0f messages/s for %s, load average %s\n", n, rate, dur, loadAvg())
	fmt.Printf("| system | subscribers | delivered msgs/s (ideal) | latency p50 | p99 | max | never delivered | publish p50 / p99 | from publish answer p50 / p99 | bytes per message | RSS rest / subscribed / peak under load | RSS per connection | server / bench CPU | server CPU per message | load avg (1m) |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var pulseFrame float64
	for _, sys := range strings.Split(c.String("systems"), ",") {
		var t *pushTarget
		ideal := rate
		switch strings.TrimSpace(sys) {
		case "pulse":
			t, err = startPulseTarget(ctx, batch)
			ideal = min(rate, pushFlushRate)
		case "centrifugo":
			sz := size
			if sz <= 0 {
				sz = int(pulseFrame + 0.5)
			}
			if sz <= 0 {
				sz = 200
			}
			t, err = startCentrifugoTarget(ctx, c.String("centrifugo"), sz)
		default:
			return fmt.Errorf("fanout: unknown system %q (pulse or centrifugo)", sys)
		}
		if err != nil {
			fmt.Printf("| %s | %d | not run: %v |||||||||||||\n", sys, n, err)
			fmt.Fprintf(os.Stderr, "%s: %v\n", sys, err)
			continue
		}
		row, frame, err := runFanout(ctx, t, n, rate, ideal, dur, int(c.Int("dial-concurrency")))
		t.stop()
		if err != nil {
			fmt.Printf("| %s | %d | failed: %v |||||||||||||\n", t.name, n, err)
			fmt.Fprintf(os.Stderr, "%s: %v\n", t.name, err)
			continue
		}
		if t.name == "pulse" {
			pulseFrame = frame
		}
		fmt.Println(row)
	}
	return nil
}

// runFanout connects n subscribers to t, publishes at rate for dur, and
// returns a table row and the mean size of a received message.
func runFanout(ctx context.Context, t *pushTarget, n int, rate, ideal float64, dur time.Duration, dialConc int) (string, float64, error) {
	time.Sleep(time.Second) // let the server settle before the rest measurement
	rest := rssKiB(t.pid)
	began := time.Now()
	fleet, err := loadgen.DialFleet(ctx, loadgen.FleetConfig{
		URL:             t.wsURL,
		Clients:         n,
		Protocol:        t.protocol,
		DialConcurrency: dialConc,
		ReadyTimeout:    120 * time.Second,
		PerSourceIP:     perSourceIP,
		MaxReadings:     int(rate*dur.Seconds()*1.5) + 64,
	})
	if err != nil {
		return "", 0, err
	}
	defer fleet.Close()
	fmt.Fprintf(os.Stderr, "%s: %d subscribers ready in %s\n", t.name, n, time.Since(began).Round(time.Millisecond))
	time.Sleep(time.Second)
	subscribed := rssKiB(t.pid)

	stopRSS := make(chan struct{})
	peakCh := peakRSS(t.pid, stopRSS)
	cpu0, self0 := cpuOf(t.pid), cpuOf(os.Getpid())
	fleet.Record(true)
	cfg := t.feedCfg
	cfg.Rate, cfg.Duration, cfg.Body = rate, dur, t.feed
	acks, st, err := loadgen.Feed(ctx, cfg)
	if err != nil {
		close(stopRSS)
		return "", 0, err
	}
	// Wait for the last publish to reach every subscriber, boundedly: an
	// overloaded server can be seconds behind.
	marks := loadgen.SendMarks(acks)
	if len(marks) > 0 {
		final := marks[len(marks)-1].Cum
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && fleet.Behind(final) > 0; {
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond) // stragglers: merged or split messages
	fleet.Record(false)
	cpu, self := cpuOf(t.pid)-cpu0, cpuOf(os.Getpid())-self0
	close(stopRSS)
	peak := <-peakCh
	fs := fleet.Stats()
	lags, missed := fleet.Lags(marks)
	ackLags, _ := fleet.Lags(loadgen.AckMarks(acks))
	if st.Failed > 0 {
		fmt.Fprintf(os.Stderr, "note: %s: %d of %d publishes failed (statuses %v)\n", t.name, st.Failed, st.Requests, st.Status)
	}
	if fs.Errors > 0 {
		fmt.Fprintf(os.Stderr, "note: %s: %d subscribers failed, first: %v\n", t.name, fs.Errors, fs.FirstErr)
	}
	var frame float64 // bytes per message: Centrifugo may batch several in a frame
	if fs.Pushes > 0 {
		frame = float64(fs.Bytes) / float64(fs.Pushes)
	}
	perConn := float64(peak-rest) / float64(n)
	var perMsg time.Duration
	if fs.Pushes > 0 {
		perMsg = cpu / time.Duration(fs.Pushes)
	}
	pubLat := ackLatencies(acks)
	row := fmt.Sprintf("| %s | %d | %.0f (%.0f) | %s | %s | %s | %d of %d | %s / %s | %s / %s | %.0f | %.0f / %.0f / %.0f MiB | %.1f KiB | %.1f s / %.1f s | %.1f µs | %s |",
		t.name, n, float64(fs.Pushes)/st.Elapsed.Seconds(), ideal*float64(n), round(lags.Percentile(50)), round(lags.Percentile(99)), round(lags.Percentile(100)),
		missed, int64(len(acks))*int64(n), round(pubLat.Percentile(50)), round(pubLat.Percentile(99)),
		round(ackLags.Percentile(50)), round(ackLags.Percentile(99)), frame, float64(rest)/1024, float64(subscribed)/1024, float64(peak)/1024, perConn, cpu.Seconds(), self.Seconds(), float64(perMsg)/float64(time.Microsecond), loadAvg())
	return row, frame, nil
}

// pushServeArgs runs pulse serve in embedded mode with the abuse limits off
// (per-IP request rate and per-site event rate): the bench measures the
// pipeline, from one address, at rates above the defaults.
func pushServeArgs(data string) []string {
	return []string{"serve", "--data", data, "--read-token", "bench", "--admin-token", "bench-admin",
		"--rate-ip", "-1", "--rate-site", "-1", "--log-level", "warn"}
}

// perSourceIP is how many subscribers share one loopback source address;
// pulse serve allows 64 WebSocket connections per client IP.
const perSourceIP = 50

// ackLatencies returns each request's time from its scheduled send to its
// answer, sorted.
func ackLatencies(acks []loadgen.Ack) loadgen.Durations {
	d := make([]time.Duration, 0, len(acks))
	for _, a := range acks {
		d = append(d, a.Done.Sub(a.Sent))
	}
	return loadgen.SortedDurations(d)
}

func startPulseTarget(ctx context.Context, batch int) (*pushTarget, error) {
	data, err := os.MkdirTemp("", "pulse-bench-fanout-")
	if err != nil {
		return nil, err
	}
	p, err := startChild(ctx, "/readyz", pushServeArgs(data)...)
	if err != nil {
		os.RemoveAll(data)
		return nil, err
	}
	site := "bench-" + randHex(4)
	var seq atomic.Int64
	return &pushTarget{
		name:     "pulse",
		pid:      p.cmd.Process.Pid,
		wsURL:    "ws://" + p.addr + "/v1/ws?token=bench",
		protocol: loadgen.PulseProtocol{Site: site, Metric: "events", Step: "10s", Window: "1m"},
		feed:     func(int64) ([]byte, int) { return pushEvents(&seq, site, batch), batch },
		feedCfg:  loadgen.FeedConfig{URL: "http://" + p.addr + "/v1/collect", Header: browserHeader(), Concurrency: 16},
		stop:     func() { p.stop(); os.RemoveAll(data) },
	}, nil
}

// centrifugoChannel is in the namespace the generated config opens to
// anonymous subscribers.
const centrifugoChannel = "bench:live"

func startCentrifugoTarget(ctx context.Context, bin string, size int) (*pushTarget, error) {
	bin, err := findCentrifugo(bin)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pulse-bench-centrifugo-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	apiKey := randHex(16)
	conf := map[string]any{
		"http_server": map[string]any{"address": "127.0.0.1", "port": port},
		"log":         map[string]any{"level": "error"},
		"http_api":    map[string]any{"key": apiKey},
		"client":      map[string]any{"allow_anonymous_connect_without_token": true, "allowed_origins": []string{"*"}},
		"channel": map[string]any{"namespaces": []map[string]any{{
			"name": "bench", "allow_subscribe_for_anonymous": true, "allow_subscribe_for_client": true,
		}}},
		"health":      map[string]any{"enabled": true},
		"usage_stats": map[string]any{"disabled": true},
	}
	cb, _ := json.MarshalIndent(conf, "", "  ")
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, cb, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "centrifugo.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	ch := &child{cmd: cmd, addr: "127.0.0.1:" + strconv.Itoa(port)}
	cleanup := func() { ch.stop(); logf.Close(); os.RemoveAll(dir) }
	if err := waitHTTP("http://"+ch.addr+"/health", 30*time.Second); err != nil {
		tail, _ := os.ReadFile(logf.Name())
		cleanup()
		return nil, fmt.Errorf("centrifugo did not start: %w; log: %.600s", err, tail)
	}
	// Pad the data so that a received push frame is size bytes.
	overhead := len(fmt.Sprintf(`{"push":{"channel":%q,"pub":{"data":{"n":%d,"pad":""}}}}`, centrifugoChannel, 100000))
	pad := strings.Repeat("x", max(size-overhead, 0))
	return &pushTarget{
		name:     "centrifugo",
		pid:      cmd.Process.Pid,
		wsURL:    "ws://" + ch.addr + "/connection/websocket",
		protocol: loadgen.CentrifugoProtocol{Channel: centrifugoChannel},
		feed: func(i int64) ([]byte, int) {
			return fmt.Appendf(nil, `{"channel":%q,"data":{"n":%d,"pad":%q}}`, centrifugoChannel, i+1, pad), 1
		},
		feedCfg: loadgen.FeedConfig{
			URL:         "http://" + ch.addr + "/api/publish",
			Header:      http.Header{"X-Api-Key": {apiKey}},
			ContentType: "application/json",
			Concurrency: 16,
			Accept:      func(b []byte) bool { return !strings.Contains(string(b), `"error"`) },
		},
		stop: cleanup,
	}, nil
}

func findCentrifugo(bin string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "pulse", "bin", "centrifugo")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("centrifugo")
	if err != nil {
		return "", errors.New("centrifugo not found: GOBIN=$HOME/.cache/pulse/bin go install github.com/centrifugal/centrifugo/v6@v6.9.1, or pass --centrifugo")
	}
	return p, nil
}

func waitHTTP(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not healthy after %s: %w", url, timeout, last)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// raiseNoFile lifts the soft open-file limit to the hard one (children
// inherit it) and returns the limit now in force.
func raiseNoFile() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, fmt.Errorf("read open-file limit: %w", err)
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return 0, fmt.Errorf("raise open-file limit to %d: %w", r.Max, err)
		}
	}
	return r.Cur, nil
}

func parseRates(s string) ([]float64, error) {
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

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

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
