package replay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pulsehq/pulse/aggregator"
	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/stream"
	"github.com/pulsehq/pulse/stream/local"
)

// BenchmarkReplay measures a replay from archive files (Parquet in a
// DirStore, 4 shards, written by archive.Writer with its defaults) into a
// real redis-server through the live aggregator code: b.N events of the
// reference workload (built-in metrics, 1,000 Zipf-distributed paths,
// 100,000 visitors, event times over the last two hours, 10% client
// retries). The stream after the archive is empty. Run with
// -benchtime=200000x: the archive is built once per run, before the timer.
// Event times spread over 2 hours (a historical replay: few events per
// 10s bucket) or over 1 minute (as BenchmarkAggregate in package
// aggregator, whose figure it can be set against).
func BenchmarkReplay(b *testing.B) {
	for _, spread := range []time.Duration{2 * time.Hour, time.Minute} {
		b.Run("spread="+spread.String(), func(b *testing.B) { benchReplay(b, spread) })
	}
}

func benchReplay(b *testing.B, spread time.Duration) {
	ctx := context.Background()
	rdb := redistest.Start(b).Client(b)
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	lg, err := local.Open(filepath.Join(dir, "stream"), local.Config{Shards: 4, ReadWait: 5 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer lg.Close()
	store := archive.NewDir(filepath.Join(dir, "archive"))
	w := archive.NewWriter(store, archive.WriterConfig{})
	r := rand.New(rand.NewPCG(3, 4))
	zipf := rand.NewZipf(r, 1.1, 1, 999)
	now := time.Now().UnixMilli()
	durable := map[string]string{}
	var ndjson int64
	var prev []event.Event
	evs := make([]event.Event, 0, b.N)
	for i := 0; i < b.N; i++ {
		e := event.Event{ID: "r" + strconv.Itoa(i), Site: "demo", Type: "pageview",
			TS: now - r.Int64N(spread.Milliseconds()), RT: now, URL: fmt.Sprintf("https://example.com/p/%d", zipf.Uint64()),
			UID: "u" + strconv.Itoa(r.IntN(100_000)), Device: "desktop", RefHost: "news.example"}
		e.Path = e.URL[len("https://example.com"):]
		if len(prev) > 0 && r.IntN(10) == 0 {
			e = prev[r.IntN(len(prev))]
		}
		if len(prev) < 1000 {
			prev = append(prev, e)
		}
		evs = append(evs, e)
	}
	// The stream holds every record (the archive is a copy of it); the
	// source reads them from the archive, up to the durable checkpoint.
	for i := 0; i < len(evs); i += 5000 {
		var entries []stream.Entry
		var datas [][]byte
		for j := i; j < min(i+5000, len(evs)); j++ {
			data, err := event.Marshal(&evs[j])
			if err != nil {
				b.Fatal(err)
			}
			ndjson += int64(len(data)) + 1
			datas = append(datas, data)
			entries = append(entries, stream.Entry{Key: evs[j].PartitionKey(), Data: data})
		}
		res, err := lg.Put(ctx, entries)
		if err != nil {
			b.Fatal(err)
		}
		for k, pr := range res {
			if err := w.Add(pr.Shard, pr.Seq, datas[k], evs[i+k]); err != nil {
				b.Fatal(err)
			}
			durable[pr.Shard] = ""
		}
	}
	for sh := range durable {
		if durable[sh], err = w.Flush(ctx, sh); err != nil {
			b.Fatal(err)
		}
	}
	objs, _ := store.List(ctx, "")
	var size int64
	for _, o := range objs {
		size += o.Size
	}
	src := NewSource(lg, SourceConfig{Archive: store, Durable: func(ctx context.Context, shard string) (string, error) { return durable[shard], nil }})
	st := redisagg.New(rdb, cat, redisagg.Config{Namespace: "bench", NoDeltas: true})
	calls0, rcpu0 := redistest.Counters(b, rdb)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	if err := Build(ctx, src, st, BuildConfig{Aggregator: aggregator.Config{Catalog: cat}, Every: 5 * time.Millisecond}); err != nil {
		b.Fatal(err)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	calls1, rcpu1 := redistest.Counters(b, rdb)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
	b.ReportMetric((rcpu1-rcpu0)*1e6/float64(b.N), "redis-cpu-us/event")
	b.ReportMetric(float64(calls1-calls0)/float64(b.N)*1000, "redis-cmds/1k-events")
	b.ReportMetric(float64(size)/float64(b.N), "archive-B/event")
	b.ReportMetric(float64(ndjson)/float64(size), "x-smaller-than-ndjson")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
