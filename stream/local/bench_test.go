package local

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsehq/pulse/stream"
)

// benchEntries makes n entries of about 250 bytes, like encoded events.
func benchEntries(prefix string, n int) []stream.Entry {
	es := make([]stream.Entry, n)
	for i := range es {
		key := fmt.Sprintf("demo/%s-%06d", prefix, i)
		es[i] = stream.Entry{Key: key, Data: fmt.Appendf(nil,
			`{"id":"01JDX6T8Q5%06d","site":"demo","type":"pageview","ts":1764258000123,"url":"https://example.com/pricing","ref":"https://news.example/","uid":"a-91f2","props":{"plan":"pro","price":49},"recv":1764258000200,"dev":"desktop"}`, i)}
	}
	return es
}

// BenchmarkPut measures Put with many callers at once, as ingest handlers
// call it, so group commit shares fsyncs between them: callers is the
// number of goroutines putting (RunParallel's parallelism times
// GOMAXPROCS), entries the size of each Put.
func BenchmarkPut(b *testing.B) {
	for _, callers := range []int{32, 128} {
		for _, n := range []int{1, 50} {
			b.Run(fmt.Sprintf("callers=%d/entries=%d", callers, n), func(b *testing.B) {
				benchPut(b, callers, n, func(l *Log, es []stream.Entry) error {
					_, err := l.Put(context.Background(), es)
					return err
				})
			})
		}
	}
}

// BenchmarkAppend is BenchmarkPut through Append, as ingest puts, with
// the 64 callers of scripts/bench/ingest-wrk.sh's connections.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("callers=64/entries=%d", n), func(b *testing.B) {
			benchPut(b, 64, n, func(l *Log, es []stream.Entry) error { return l.Append(context.Background(), es) })
		})
	}
}

// benchPut runs put with callers goroutines and n entries a call.
func benchPut(b *testing.B, callers, n int, put func(*Log, []stream.Entry) error) {
	l, err := Open(b.TempDir(), Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var id atomic.Int64
	b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0, commits0 := time.Now(), cpuTime(), l.commits.Load()
	b.RunParallel(func(pb *testing.PB) {
		es := benchEntries(strconv.FormatInt(id.Add(1), 10), n)
		for pb.Next() {
			if err := put(l, es); err != nil {
				b.Error(err)
				return
			}
		}
	})
	events := float64(b.N * n)
	b.ReportMetric(events/time.Since(start).Seconds(), "events/s")
	// CPU per event (process user + system, the kernel's
	// fsync work included) is what a shared machine pays.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/events, "cpu-ns/event")
	b.ReportMetric(events/float64(max(1, l.commits.Load()-commits0)), "events/commit")
}

// BenchmarkRead measures reading a shard in batches of 1000 from records
// already on disk, with one reader and with four at once.
func BenchmarkRead(b *testing.B) {
	l, err := Open(b.TempDir(), Config{Shards: 1, SegmentBytes: 8 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const total = 100_000
	for i := 0; i < total; i += 1000 {
		if _, err := l.Put(context.Background(), benchEntries(strconv.Itoa(i), 1000)); err != nil {
			b.Fatal(err)
		}
	}
	for _, readers := range []int{1, 4} {
		b.Run(fmt.Sprintf("readers=%d", readers), func(b *testing.B) {
			b.SetParallelism(max(1, readers/2))
			b.ReportAllocs()
			var records atomic.Int64
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				after := ""
				for pb.Next() {
					batch, err := l.Read(context.Background(), "shard-000000", after, 1000)
					if err != nil {
						b.Error(err)
						return
					}
					records.Add(int64(len(batch.Records)))
					after = batch.Records[len(batch.Records)-1].Seq
					if after == strconv.Itoa(total) {
						after = ""
					}
				}
			})
			b.ReportMetric(float64(records.Load())/time.Since(start).Seconds(), "records/s")
		})
	}
}

// BenchmarkOpen measures recovery: Open scans every segment, checking each
// record and rebuilding the indexes.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	l, err := Open(dir, Config{Shards: 4, SegmentBytes: 8 << 20})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 200_000; i += 1000 {
		if _, err := l.Put(context.Background(), benchEntries(strconv.Itoa(i), 1000)); err != nil {
			b.Fatal(err)
		}
	}
	size := l.totalBytes()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		l, err := Open(dir, Config{})
		if err != nil {
			b.Fatal(err)
		}
		l.Close()
	}
}
