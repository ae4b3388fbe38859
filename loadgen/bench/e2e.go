package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pulsehq/pulse/loadgen"
)

// E2EConfig is a run of E2E.
type E2EConfig struct {
	Rate        float64       // offered events/s
	Warmup      time.Duration // load before the measured window
	Duration    time.Duration // the measured window, after the warm-up
	Batch       int           // events per request
	Connections int           // keep-alive connections of the load client
	Systems     []string      // "embedded", "redis"; one run each, in order
	AdminAddr   string        // --admin-addr of each pulse serve, to profile it; empty: none
	// DrainTimeout bounds the wait, after the load, for the aggregator to
	// apply what was accepted; default 60s.
	DrainTimeout time.Duration
}

// The systems E2E compares: the same pulse serve on its embedded Redis and
// on a redis-server the bench starts.
const (
	SystemEmbedded = "embedded"
	SystemRedis    = "redis"
)

// ParseSystems parses the --redis flag of `pulse bench e2e`.
func ParseSystems(s string) ([]string, error) {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		switch f = strings.TrimSpace(f); f {
		case SystemEmbedded, SystemRedis:
			out = append(out, f)
		default:
			return nil, fmt.Errorf("--redis %q: want a comma-separated list of %s and %s", s, SystemEmbedded, SystemRedis)
		}
	}
	return out, nil
}

// E2E drives the whole default server (pulse serve, all roles) at a fixed
// offered rate with the same load client for every system, and reports
// per system the applied events/s, the aggregator's lag, freshness (202 to
// WebSocket delta), RSS and CPU per event of pulse and of Redis.
func E2E(ctx context.Context, env Env, cfg E2EConfig) error {
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 60 * time.Second
	}
	if cfg.Rate <= 0 || cfg.Batch <= 0 || cfg.Duration <= 0 || cfg.Warmup < 0 {
		return fmt.Errorf("bench e2e: want a positive rate, batch and duration and a warm-up of 0 or more")
	}
	if _, err := raiseNoFile(); err != nil {
		fmt.Fprintf(env.Log, "note: %v\n", err)
	}
	var figs []e2eFigures
	for _, sys := range cfg.Systems {
		f, err := runE2E(ctx, env, cfg, sys)
		if err != nil {
			return fmt.Errorf("bench e2e on %s: %w", sys, err)
		}
		figs = append(figs, f)
	}
	printE2E(env.Out, cfg, figs)
	return nil
}

// e2eTarget is one system under load: a pulse serve with every role on a
// fresh data directory, and the redis-server it uses, if any.
type e2eTarget struct {
	name  string
	pulse *child
	redis *redisServer // nil: the embedded Redis, inside pulse's process
	data  string
}

func startE2ETarget(ctx context.Context, env Env, cfg E2EConfig, sys string) (*e2eTarget, error) {
	data, err := os.MkdirTemp("", "pulse-bench-e2e-")
	if err != nil {
		return nil, err
	}
	t := &e2eTarget{name: "embedded Redis", data: data}
	args := serveArgs(data)
	if sys == SystemRedis {
		if t.redis, err = startRedisServer(ctx); err != nil {
			os.RemoveAll(data)
			return nil, err
		}
		t.name = "redis-server"
		args = append(args, "--redis", t.redis.url())
	}
	if cfg.AdminAddr != "" {
		args = append(args, "--admin-addr", cfg.AdminAddr)
	}
	if t.pulse, err = startChild(ctx, env.Pulse, "/readyz", args...); err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

func (t *e2eTarget) stop() {
	if t.pulse != nil {
		t.pulse.stop()
	}
	if t.redis != nil {
		t.redis.stop()
	}
	os.RemoveAll(t.data)
}

func (t *e2eTarget) metricsURL() string { return "http://" + t.pulse.addr + "/metrics" }

// mark reads the counters and the CPU times now.
func (t *e2eTarget) mark(ctx context.Context) (e2eMark, error) {
	m := e2eMark{PulseCPU: cpuOf(t.pulse.pid())}
	var err error
	if t.redis != nil {
		if m.RedisCPU, err = t.redis.cpu(ctx); err != nil {
			return m, err
		}
	}
	if m.C, err = scrapeCounters(ctx, t.metricsURL()); err != nil {
		return m, err
	}
	m.At = time.Now()
	return m, nil
}

// primeEvents is the size of the batch prime sends: with events spread over
// the stream's shards by id, every shard gets some.
const primeEvents = 64

// prime sends a batch of events of a site of its own and waits, at most a
// minute, until the aggregator has applied them all, and returns the
// counters then: on a redis-server, pulse serve runs as a group (--group
// auto) and applies nothing until it holds its shard leases, seconds
// after /readyz, and the load must find a server that applies.
func (t *e2eTarget) prime(ctx context.Context) (pipelineCounters, error) {
	tmpl := e2eTemplate("prime-"+randHex(4), primeEvents)
	body := bytes.Clone(tmpl.Body)
	tmpl.Fill(body, 0) // ids 0 .. primeEvents-1
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+t.pulse.addr+"/v1/collect", bytes.NewReader(body))
	if err != nil {
		return pipelineCounters{}, err
	}
	req.Header = browserHeader()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return pipelineCounters{}, fmt.Errorf("prime %s: %w", t.name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return pipelineCounters{}, fmt.Errorf("prime %s: status %d", t.name, resp.StatusCode)
	}
	var c pipelineCounters
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err = scrapeCounters(ctx, t.metricsURL()); err != nil {
			return c, err
		}
		if c.Applied >= primeEvents && c.lag() == 0 {
			return c, nil
		}
	}
	return c, fmt.Errorf("prime %s: %d of %d events applied after a minute", t.name, c.Applied, primeEvents)
}

// runE2E measures one system.
func runE2E(ctx context.Context, env Env, cfg E2EConfig, sys string) (e2eFigures, error) {
	t, err := startE2ETarget(ctx, env, cfg, sys)
	if err != nil {
		return e2eFigures{}, err
	}
	defer t.stop()
	base, err := t.prime(ctx)
	if err != nil {
		return e2eFigures{}, err
	}
	time.Sleep(500 * time.Millisecond) // let it settle before the rest measurement
	site := "bench-" + randHex(4)
	fleet, err := loadgen.DialFleet(ctx, loadgen.FleetConfig{
		URL:         "ws://" + t.pulse.addr + "/v1/ws?token=" + readToken,
		Clients:     1,
		Protocol:    loadgen.PulseProtocol{Site: site, Metric: "events", Step: "10s", Window: "15m"},
		MaxReadings: 1 << 20,
	})
	if err != nil {
		return e2eFigures{}, fmt.Errorf("subscribe to %s: %w", site, err)
	}
	defer fleet.Close()
	fleet.Record(true)
	fmt.Fprintf(env.Log, "bench e2e: pulse serve (all roles, %s) on %s: %.0f events/s offered in %d-event batches over %d connections, %s warm-up + %s measured, load average %s\n",
		t.name, t.pulse.addr, cfg.Rate, cfg.Batch, cfg.Connections, cfg.Warmup, cfg.Duration, loadAvg())
	r := &e2eRun{env: env, cfg: cfg, t: t, site: site, fleet: fleet, base: base, restRSS: rssKiB(t.pulse.pid())}
	f, err := r.measure(ctx)
	if err != nil {
		return f, err
	}
	fmt.Fprintf(env.Log, "bench e2e %s: %.0f events/s applied, %d deltas to the subscriber\n", t.name, f.appliedRate, fleet.Stats().Pushes)
	return f, nil
}
