package aggregator

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/stream"
)

// referenceEvents is the reference workload: 1,000 Zipf-distributed paths,
// 100,000 visitors, timestamps over the last minute, 10% retries.
func referenceEvents(n int, now int64) []event.Event {
	r := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(r, 1.1, 1, 999)
	out := make([]event.Event, 0, n)
	for i := 0; len(out) < n; i++ {
		if i > 0 && r.IntN(10) == 0 {
			out = append(out, out[r.IntN(len(out))])
			continue
		}
		e := event.Event{
			ID: fmt.Sprintf("01JDX6T8Q5%016d", i), Site: "demo", TS: now - int64(r.IntN(60_000)), RT: now,
			Path: fmt.Sprintf("/page/%d", zipf.Uint64()), UID: fmt.Sprintf("v-%d", r.IntN(100_000)),
			Device: []string{"desktop", "mobile", "tablet"}[r.IntN(3)], RefHost: fmt.Sprintf("ref%d.example", r.IntN(20)),
		}
		e.URL = "https://demo.example" + e.Path
		switch x := r.IntN(100); {
		case x < 80:
			e.Type = "pageview"
		case x < 95:
			e.Type = "click"
			e.Props = map[string]any{"target": fmt.Sprintf("btn-%d", r.IntN(10))}
		default:
			e.Type = "signup"
		}
		out = append(out, e)
	}
	return out
}

// BenchmarkAggregate measures events/s from a pre-filled stream/local (4
// shards) into a real redis-server through redisagg.
func BenchmarkAggregate(b *testing.B) {
	ctx := context.Background()
	srv := redistest.Start(b)
	rdb := srv.Client(b)
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		b.Fatal(err)
	}
	n := b.N
	log, tips := fillLocal(b, 4, benchEvents(b, n))
	store := redisagg.New(rdb, cat, redisagg.Config{})
	a, err := New(log, store, Config{Catalog: cat})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	calls0, rcpu0 := redistest.Counters(b, rdb)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	go func() { errc <- a.Run(runCtx) }()
	if !eventually(benchWait, time.Millisecond, func() bool { return appliedTo(ctx, store, tips) }) {
		b.Fatalf("not applied within %v", benchWait)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	calls1, rcpu1 := redistest.Counters(b, rdb)
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	// On a shared machine wall time depends on the neighbours; CPU time
	// per event of this process (redis-server not included) does not.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/event")
	// Commands run inside the apply script count, as do the position
	// polls of this loop (a few per millisecond of the run).
	b.ReportMetric(float64(calls1-calls0)/float64(n)*1000, "redis-cmds/1k-events")
	b.ReportMetric((rcpu1-rcpu0)*1e6/float64(n), "redis-cpu-us/event")
	b.ReportMetric(float64(store.Stats().Commits), "commits")
}

// benchWait bounds how long a benchmark waits for the aggregator, so that a
// broken build fails instead of hanging (go test's own default timeout is
// 10m).
const benchWait = 9 * time.Minute

// cpuTime is the user+system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFold measures the per-record CPU work (decode, dedup, combine)
// without the store.
func BenchmarkFold(b *testing.B) {
	cat, _ := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	evs := referenceEvents(100_000, time.Now().UnixMilli())
	recs := make([]stream.Record, len(evs))
	for i := range evs {
		recs[i] = stream.Record{Seq: fmt.Sprint(i + 1), Data: mustMarshal(b, &evs[i])}
	}
	a, _ := New(newMemSource(1), newMemStore(1), Config{Catalog: cat})
	c := newCombiner(a.plan)
	d := newDedup(10*time.Minute, 0)
	t := &tally{skipped: make([]int64, len(a.plan.steps))}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i > 0 && i%len(recs) == 0 {
			// A fresh window per pass: a record seen again would be a
			// duplicate, skipped before combine, and flatter the figure.
			d = newDedup(10*time.Minute, 0)
		}
		a.fold(c, d, &recs[i%len(recs)], t)
		if i%10000 == 9999 {
			c.update()
		}
	}
}
