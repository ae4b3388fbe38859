package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pulsehq/pulse/loadgen"
)

// FanoutConfig is a run of Fanout.
type FanoutConfig struct {
	Clients         int           // concurrent subscribers
	Rate            float64       // published messages/s per channel (Pulse: ingest requests/s)
	Duration        time.Duration // length of the publishing phase
	Size            int           // bytes of a Centrifugo message frame; 0: the mean size of Pulse's deltas in the same run
	Batch           int           // events per Pulse ingest request
	Systems         []string      // which servers to measure, in order: "pulse", "centrifugo"
	Centrifugo      string        // the centrifugo binary; empty: $HOME/.cache/pulse/bin/centrifugo, then PATH
	DialConcurrency int           // WebSocket handshakes in flight while connecting
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

// Fanout connects many WebSocket subscribers to one metric of each system
// in turn and publishes to it: delivered messages/s, latency, RSS per
// connection and CPU per message, one table row per system. A system that
// cannot be started or measured gets a row saying why.
func Fanout(ctx context.Context, env Env, cfg FanoutConfig) error {
	n := cfg.Clients
	if n <= 0 || cfg.Rate <= 0 || cfg.Batch <= 0 {
		return errors.New("fanout: --clients, --rate and --batch must be positive")
	}
	limit, err := raiseNoFile()
	if err != nil {
		return err
	}
	if need := uint64(n) + 512; limit < need {
		return fmt.Errorf("fanout: open-file limit %d is below the %d that %d clients need; raise it (ulimit -n) or lower --clients", limit, need, n)
	}
	if cfg.Rate > PushFlushRate {
		fmt.Fprintf(env.Log, "note: --rate %.0f is above Pulse's %d flushes/s: Pulse merges deltas, Centrifugo delivers each message\n", cfg.Rate, PushFlushRate)
	}
	fmt.Fprintf(env.Log, "bench fanout: %d subscribers, %.0f messages/s for %s, load average %s\n", n, cfg.Rate, cfg.Duration, loadAvg())
	fmt.Fprintf(env.Out, "| system | subscribers | delivered msgs/s (ideal) | latency p50 | p99 | max | never delivered | publish p50 / p99 | from publish answer p50 / p99 | bytes per message | RSS rest / subscribed / peak under load | RSS per connection | server / bench CPU | server CPU per message | load avg (1m) |\n")
	fmt.Fprintf(env.Out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var pulseFrame float64
	for _, sys := range cfg.Systems {
		var t *pushTarget
		ideal := cfg.Rate
		switch strings.TrimSpace(sys) {
		case "pulse":
			t, err = startPulseTarget(ctx, env.Pulse, cfg.Batch)
			ideal = min(cfg.Rate, PushFlushRate)
		case "centrifugo":
			t, err = startCentrifugoTarget(ctx, cfg.Centrifugo, centrifugoFrame(cfg.Size, pulseFrame))
		default:
			return fmt.Errorf("fanout: unknown system %q (pulse or centrifugo)", sys)
		}
		if err != nil {
			fmt.Fprintf(env.Out, "| %s | %d | not run: %v |||||||||||||\n", sys, n, err)
			fmt.Fprintf(env.Log, "%s: %v\n", sys, err)
			continue
		}
		row, frame, err := runFanout(ctx, env, t, cfg, ideal)
		t.stop()
		if err != nil {
			fmt.Fprintf(env.Out, "| %s | %d | failed: %v |||||||||||||\n", t.name, n, err)
			fmt.Fprintf(env.Log, "%s: %v\n", t.name, err)
			continue
		}
		if t.name == "pulse" {
			pulseFrame = frame
		}
		fmt.Fprintln(env.Out, row)
	}
	return nil
}

// centrifugoFrame is the size of Centrifugo's message frames: size when
// set, else the mean size of Pulse's deltas in the same run (rounded),
// else 200 bytes.
func centrifugoFrame(size int, pulseFrame float64) int {
	if size > 0 {
		return size
	}
	if sz := int(pulseFrame + 0.5); sz > 0 {
		return sz
	}
	return 200
}

// runFanout connects the subscribers to t, publishes for the duration,
// and returns a table row and the mean size of a received message.
func runFanout(ctx context.Context, env Env, t *pushTarget, cfg FanoutConfig, ideal float64) (string, float64, error) {
	n := cfg.Clients
	time.Sleep(time.Second) // let the server settle before the rest measurement
	rest := rssKiB(t.pid)
	began := time.Now()
	fleet, err := loadgen.DialFleet(ctx, loadgen.FleetConfig{
		URL:             t.wsURL,
		Clients:         n,
		Protocol:        t.protocol,
		DialConcurrency: cfg.DialConcurrency,
		ReadyTimeout:    120 * time.Second,
		PerSourceIP:     perSourceIP,
		MaxReadings:     int(cfg.Rate*cfg.Duration.Seconds()*1.5) + 64,
	})
	if err != nil {
		return "", 0, err
	}
	defer fleet.Close()
	fmt.Fprintf(env.Log, "%s: %d subscribers ready in %s\n", t.name, n, time.Since(began).Round(time.Millisecond))
	time.Sleep(time.Second)
	subscribed := rssKiB(t.pid)

	stopRSS := make(chan struct{})
	peakCh := peakRSS(t.pid, stopRSS)
	cpu0, self0 := cpuOf(t.pid), cpuOf(os.Getpid())
	fleet.Record(true)
	fc := t.feedCfg
	fc.Rate, fc.Duration, fc.Body = cfg.Rate, cfg.Duration, t.feed
	acks, st, err := loadgen.Feed(ctx, fc)
	if err != nil {
		close(stopRSS)
		return "", 0, err
	}
	marks := loadgen.SendMarks(acks)
	awaitDelivery(fleet, marks)
	fleet.Record(false)
	cpu, self := cpuOf(t.pid)-cpu0, cpuOf(os.Getpid())-self0
	close(stopRSS)
	peak := <-peakCh
	fs := fleet.Stats()
	lags, missed := fleet.Lags(marks)
	ackLags, _ := fleet.Lags(loadgen.AckMarks(acks))
	if st.Failed > 0 {
		fmt.Fprintf(env.Log, "note: %s: %d of %d publishes failed (statuses %v)\n", t.name, st.Failed, st.Requests, st.Status)
	}
	if fs.Errors > 0 {
		fmt.Fprintf(env.Log, "note: %s: %d subscribers failed, first: %v\n", t.name, fs.Errors, fs.FirstErr)
	}
	var frame float64 // bytes per message: Centrifugo may batch several in a frame
	var perMsg time.Duration
	if fs.Pushes > 0 {
		frame = float64(fs.Bytes) / float64(fs.Pushes)
		perMsg = cpu / time.Duration(fs.Pushes)
	}
	perConn := float64(peak-rest) / float64(n)
	pubLat := ackLatencies(acks)
	row := fmt.Sprintf("| %s | %d | %.0f (%.0f) | %s | %s | %s | %d of %d | %s / %s | %s / %s | %.0f | %.0f / %.0f / %.0f MiB | %.1f KiB | %.1f s / %.1f s | %.1f µs | %s |",
		t.name, n, float64(fs.Pushes)/st.Elapsed.Seconds(), ideal*float64(n), round(lags.Percentile(50)), round(lags.Percentile(99)), round(lags.Percentile(100)),
		missed, int64(len(acks))*int64(n), round(pubLat.Percentile(50)), round(pubLat.Percentile(99)),
		round(ackLags.Percentile(50)), round(ackLags.Percentile(99)), frame, float64(rest)/1024, float64(subscribed)/1024, float64(peak)/1024, perConn, cpu.Seconds(), self.Seconds(), float64(perMsg)/float64(time.Microsecond), loadAvg())
	return row, frame, nil
}

// awaitDelivery waits for the last publish to reach every subscriber,
// boundedly: an overloaded server can be seconds behind. Then a moment
// more for stragglers (merged or split messages).
func awaitDelivery(fleet *loadgen.Fleet, marks []loadgen.Mark) {
	if len(marks) > 0 {
		final := marks[len(marks)-1].Cum
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && fleet.Behind(final) > 0; {
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond)
}
