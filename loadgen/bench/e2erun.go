package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/pulsehq/pulse/internal/redisinfo"
	"github.com/pulsehq/pulse/loadgen"
)

// e2eRun is the load and the readings of one system.
type e2eRun struct {
	env     Env
	cfg     E2EConfig
	t       *e2eTarget
	site    string
	fleet   *loadgen.Fleet
	base    pipelineCounters // after prime: what the figures leave out
	restRSS int64            // KiB
}

// e2ePhases is what the phases of a run read: marks at the end of the
// warm-up (m0), at the end of the load (m1) and once the aggregator caught
// up or the drain timed out (m2).
type e2ePhases struct {
	offer      loadgen.OfferResult
	clientCPU  time.Duration // the bench process's, while it offered the load
	m0, m1, m2 e2eMark
	drained    bool
	cmds       []redisinfo.CommandStat // redis-server's, from m0 to m2
}

// e2eFigures are what E2E reports for one system.
type e2eFigures struct {
	system                    string
	embedded                  bool
	stats                     loadgen.FeedStats // the client's view of every request
	scheduled, notOffered     int64
	window                    time.Duration
	acceptedRate, appliedRate float64 // events/s over the window
	maxLag, endLag            int64   // events accepted, not applied
	drained                   bool
	drainTime                 time.Duration
	final                     pipelineCounters // at m2, less prime's
	subscriberTotal           int64            // the subscriber's watermark at the end
	fresh                     loadgen.Durations
	freshMissed               int
	restRSS, peakRSS, hwm     int64 // KiB, pulse
	redisPeakRSS              int64 // KiB, redis-server
	events                    int64 // applied from m0 to m2: the denominator of the CPU figures
	pulseCPU, redisCPU        time.Duration
	cmds                      []redisinfo.CommandStat
	clientCPU                 time.Duration
	requests                  int64
	load                      string
}

// measure runs the phases with the samplers on and returns the figures.
func (r *e2eRun) measure(ctx context.Context) (e2eFigures, error) {
	f := e2eFigures{system: r.t.name, embedded: r.t.redis == nil, restRSS: r.restRSS}
	pid := r.t.pulse.pid()
	smp := startSampler(ctx, r.t.metricsURL(), time.Second)
	stopRSS := make(chan struct{})
	peak := peakRSS(pid, stopRSS)
	var redisPeak <-chan int64
	if r.t.redis != nil {
		redisPeak = peakRSS(r.t.redis.pid(), stopRSS)
	}
	p, err := r.phases(ctx)
	f.hwm = vmHWMKiB(pid)
	close(stopRSS)
	f.peakRSS = <-peak
	if redisPeak != nil {
		f.redisPeakRSS = <-redisPeak
	}
	samples := smp.finish()
	if err != nil {
		return f, err
	}
	logLagTimeline(r.env.Log, samples)
	r.figures(&f, p, samples)
	return f, nil
}

// logLagTimeline prints the lag and the applied events of each second: a
// stall shows where a sum over the window does not.
func logLagTimeline(w io.Writer, samples []e2eSample) {
	var b strings.Builder
	for i, s := range samples {
		applied := s.C.Applied
		if i > 0 {
			applied -= samples[i-1].C.Applied
		}
		fmt.Fprintf(&b, " %d/%d", s.C.lag(), applied)
	}
	fmt.Fprintf(w, "each second, events behind / applied:%s\n", b.String())
}

// phases offers the load (warm-up, then the measured window), waits for
// the aggregator to drain it and for the subscriber to see it.
func (r *e2eRun) phases(ctx context.Context) (e2ePhases, error) {
	var p e2ePhases
	self := os.Getpid()
	cpu0 := cpuOf(self)
	type outcome struct {
		res loadgen.OfferResult
		err error
	}
	done := make(chan outcome, 1)
	offerCtx, cancelOffer := context.WithCancel(ctx)
	defer cancelOffer()
	start := time.Now()
	go func() {
		res, err := loadgen.Offer(offerCtx, r.offerConfig())
		done <- outcome{res, err}
	}()
	m0, warmErr := r.afterWarmup(ctx, start)
	if warmErr != nil {
		cancelOffer()
	}
	o := <-done // on every path: Offer ends by its schedule or offerCtx
	p.clientCPU = cpuOf(self) - cpu0
	if warmErr != nil {
		return p, warmErr
	}
	if o.err != nil {
		return p, o.err
	}
	p.m0, p.offer = m0, o.res
	var err error
	if p.m1, err = r.t.mark(ctx); err != nil {
		return p, err
	}
	fmt.Fprintf(r.env.Log, "load done: %d requests sent, %d not offered; %d events behind, draining\n", len(p.offer.Acks), p.offer.NotOffered, p.m1.C.lag())
	if p.m2, p.drained, err = r.drain(ctx); err != nil {
		return p, err
	}
	if r.t.redis != nil {
		if p.cmds, err = r.t.redis.commandStats(ctx); err != nil {
			return p, err
		}
	}
	r.awaitSubscriber(loadgen.Summarize(p.offer.Acks, 0).Events)
	r.fleet.Close()
	return p, nil
}

func (r *e2eRun) offerConfig() loadgen.OfferConfig {
	return loadgen.OfferConfig{
		Addr:        r.t.pulse.addr,
		Path:        "/v1/collect",
		Header:      browserHeader(),
		Body:        e2eTemplate(r.site, r.cfg.Batch),
		Connections: r.cfg.Connections,
		Rate:        r.cfg.Rate / float64(r.cfg.Batch),
		Duration:    r.cfg.Warmup + r.cfg.Duration,
	}
}

// afterWarmup waits until the warm-up is over, then zeroes redis-server's
// command statistics and marks the start of the measured window.
func (r *e2eRun) afterWarmup(ctx context.Context, start time.Time) (e2eMark, error) {
	t := time.NewTimer(time.Until(start.Add(r.cfg.Warmup)))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return e2eMark{}, ctx.Err()
	}
	if r.t.redis != nil {
		if err := r.t.redis.resetStats(ctx); err != nil {
			return e2eMark{}, err
		}
	}
	return r.t.mark(ctx)
}

// drain waits, at most DrainTimeout, until the aggregator has read every
// accepted event, and returns the mark then and whether it got there.
func (r *e2eRun) drain(ctx context.Context) (e2eMark, bool, error) {
	deadline := time.Now().Add(r.cfg.DrainTimeout)
	for {
		m, err := r.t.mark(ctx)
		if err != nil || m.C.lag() <= 0 {
			return m, err == nil, err
		}
		if time.Now().After(deadline) {
			return m, false, nil
		}
		select {
		case <-ctx.Done():
			return m, false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// awaitSubscriber gives the subscriber 5 s to see the last events.
func (r *e2eRun) awaitSubscriber(events int64) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && r.fleet.Behind(events) > 0; {
		time.Sleep(20 * time.Millisecond)
	}
}

// figures computes what E2E reports from the phases and the samples.
func (r *e2eRun) figures(f *e2eFigures, p e2ePhases, samples []e2eSample) {
	f.stats = loadgen.Summarize(p.offer.Acks, p.offer.Elapsed)
	f.scheduled, f.notOffered, f.requests = p.offer.Scheduled, p.offer.NotOffered, int64(len(p.offer.Acks))
	f.clientCPU = p.clientCPU
	f.window = p.m1.At.Sub(p.m0.At)
	f.acceptedRate = float64(p.m1.C.Accepted-p.m0.C.Accepted) / f.window.Seconds()
	f.appliedRate = float64(p.m1.C.Applied-p.m0.C.Applied) / f.window.Seconds()
	f.endLag = p.m1.C.lag()
	f.maxLag = max(f.endLag, p.m0.C.lag())
	for _, s := range samples {
		if !s.At.After(p.m1.At) {
			f.maxLag = max(f.maxLag, s.C.lag())
		}
	}
	f.drained, f.drainTime, f.final = p.drained, p.m2.At.Sub(p.m1.At), p.m2.C.minus(r.base)
	f.events = p.m2.C.Applied - p.m0.C.Applied
	f.pulseCPU, f.redisCPU = p.m2.PulseCPU-p.m0.PulseCPU, p.m2.RedisCPU-p.m0.RedisCPU
	f.cmds = p.cmds
	// Freshness of the requests acknowledged within the measured window.
	var marks []loadgen.Mark
	for _, m := range loadgen.AckMarks(p.offer.Acks) {
		if !m.At.Before(p.m0.At) && !m.At.After(p.m1.At) {
			marks = append(marks, m)
		}
	}
	f.fresh, f.freshMissed = r.fleet.Lags(marks)
	if rd := r.fleet.Readings(0); len(rd) > 0 {
		f.subscriberTotal = rd[len(rd)-1].Total
	}
	f.load = loadAvg()
}

// e2eTemplate is a body of n pageviews of site, each with an id of its
// own per request (site-NNNNNNNNNNNN), a page of 1,000 and a visitor of
// 100,000 that change with it, as the wrk scripts of issue 14 send.
func e2eTemplate(site string, n int) loadgen.Template {
	var b loadgen.TemplateBuilder
	b.Text("[")
	for j := range n {
		if j > 0 {
			b.Text(",")
		}
		b.Text(`{"id":"` + site + `-`)
		b.Field(12, j, 0)
		b.Text(`","site":"` + site + `","type":"pageview","url":"https://example.com/p/`)
		b.Field(3, j, 1000)
		b.Text(`","uid":"u-`)
		b.Field(5, j, 100000)
		b.Text(`"}`)
	}
	b.Text("]")
	return b.Template(n)
}
