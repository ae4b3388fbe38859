package redisagg

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
)

// workload makes pre-combined updates of the reference workload: built-in
// metrics, 1,000 paths (Zipf), 100,000 visitors, timestamps over the last
// minute, batches of size events (the reference is 5,000), combined as the
// aggregator does.
func workload(cat *metric.Catalog, batches, size int, now time.Time) []*metric.Update {
	r := rand.New(rand.NewPCG(1, 2))
	paths := rand.NewZipf(r, 1.1, 1, 999)
	devices := []string{"desktop", "mobile", "tablet"}
	out := make([]*metric.Update, batches)
	for i := range out {
		a := newAdder(cat)
		for j := 0; j < size; j++ {
			ts := now.UnixMilli() - r.Int64N(60000)
			path := "/p/" + strconv.FormatUint(paths.Uint64(), 10)
			uid := "u" + strconv.Itoa(r.IntN(100000))
			dev := devices[r.IntN(len(devices))]
			if r.IntN(10) < 7 {
				ref := metric.None
				if k := r.IntN(25); k < 20 {
					ref = "ref" + strconv.Itoa(k) + ".example"
				}
				a.count("bench", "events", ts, 1, "type", "pageview")
				a.count("bench", "pageviews", ts, 1, "path", path, "referrer", ref, "device", dev)
			} else {
				a.count("bench", "events", ts, 1, "type", "click")
				a.count("bench", "clicks", ts, 1, "path", path, "target", "t"+strconv.Itoa(r.IntN(50)))
			}
			a.unique("bench", "visitors", ts, uid)
		}
		out[i] = a.u
	}
	return out
}

// BenchmarkApply applies the reference workload to a real redis-server and
// reports events/s, Redis commands per 1,000 events (commands run inside the
// script included) and Redis CPU microseconds per event.
func BenchmarkApply(b *testing.B) {
	for _, bc := range []struct {
		name    string
		cfg     Config
		batch   int
		batches int
	}{
		{"deltas", Config{}, 5000, 20},
		{"nodeltas", Config{NoDeltas: true}, 5000, 20},
		{"deltas-batch50k", Config{}, 50000, 4},
		{"nodeltas-batch50k", Config{NoDeltas: true}, 50000, 4},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := redistest.Start(b)
			rdb := srv.Client(b)
			cat := catalog(b)
			now := time.Now()
			cfg := bc.cfg
			cfg.Now = func() time.Time { return now }
			st := New(rdb, cat, cfg)
			ups := workload(cat, bc.batches, bc.batch, now)
			ctx := context.Background()
			// Warm up: load the script and create the buckets.
			if err := st.Apply(ctx, commit("1", "1", 0, ups[0])); err != nil {
				b.Fatal(err)
			}
			calls0, cpu0 := redistest.Counters(b, rdb)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				seq := strconv.Itoa(i + 2)
				if err := st.Apply(ctx, commit(seq, seq, 0, ups[i%len(ups)])); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			calls1, cpu1 := redistest.Counters(b, rdb)
			events := float64(b.N) * float64(bc.batch)
			b.ReportMetric(events/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(calls1-calls0-1)/events*1000, "redis-cmds/1k-events")
			b.ReportMetric((cpu1-cpu0)*1e6/events, "redis-cpu-us/event")
		})
	}
}
