package aggregator

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
)

// liveEvents is one batch of the load that `wrk -s fifty.lua` sends to a
// whole server (docs/benchmarks.md): pageviews of one site over 1,000
// paths and 100,000 visitors, enriched as ingest does, all received now.
func liveEvents(from, n int, now int64) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		k := from + i
		e := &out[i]
		*e = event.Event{
			ID: "w-" + strconv.Itoa(k), Site: "bench", Type: "pageview", TS: now, RT: now,
			URL: "https://example.com/p/" + strconv.Itoa(k%1000), Path: "/p/" + strconv.Itoa(k%1000),
			UID: "u-" + strconv.Itoa(k%100000), Device: "desktop",
		}
		e.Browser, e.BrowserVersion, e.OS, e.OSVersion = "Chrome", "131", "Linux", ""
	}
	return out
}

// liveRun is the events one iteration of BenchmarkApplyLive applies: about
// half a minute of a loaded server, so the hour's fact rows grow as they
// do in a live run.
const liveRun = 500_000

// BenchmarkApplyLive applies commits of the size the live path makes
// (one per shard and apply, a few hundred to a few thousand events that
// arrived since the previous one) into a real redis-server, one after
// another into the same hour, as a server under steady load does, fact
// rows included. It reports the Redis CPU per event, the figure issue 14
// bounds, and this process's CPU per event for the apply (encoding and
// the client), combining left out.
func BenchmarkApplyLive(b *testing.B) {
	for _, size := range []int{500, 2500, 10000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			ctx := context.Background()
			srv := redistest.Start(b)
			rdb := srv.Client(b)
			cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
			if err != nil {
				b.Fatal(err)
			}
			store := redisagg.New(rdb, cat, redisagg.Config{})
			a, err := New(newMemSource(1), store, Config{Catalog: cat})
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now().UnixMilli()
			c := newCombiner(a.plan)
			t := &tally{skipped: make([]int64, len(a.plan.steps))}
			commit := func(i int) *metric.Commit {
				for _, e := range liveEvents(i*size, size, now) {
					c.add(&e, t)
				}
				seq := strconv.Itoa(i + 1)
				return &metric.Commit{Shard: "s", First: seq, Last: seq, Update: c.update()}
			}
			// Warm up: load the script and create the buckets.
			if err := store.Apply(ctx, commit(0)); err != nil {
				b.Fatal(err)
			}
			calls0, rcpu0 := redistest.Counters(b, rdb)
			var cpu time.Duration
			b.ResetTimer()
			batches := b.N * (liveRun / size)
			for i := 1; i <= batches; i++ {
				cm := commit(i)
				cpu0 := cpuTime()
				if err := store.Apply(ctx, cm); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - cpu0
			}
			b.StopTimer()
			calls1, rcpu1 := redistest.Counters(b, rdb)
			n := float64(batches * size)
			b.ReportMetric((rcpu1-rcpu0)*1e6/n, "redis-cpu-us/event")
			b.ReportMetric(float64(calls1-calls0-1)/n*1000, "redis-cmds/1k-events")
			b.ReportMetric(float64(cpu.Nanoseconds())/n, "apply-cpu-ns/event")
		})
	}
}
