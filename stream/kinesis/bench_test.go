package kinesis

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/pulsehq/pulse/stream"
)

// packingServer speaks just enough of the Kinesis JSON 1.1 API (ListShards,
// PutRecords) to accept every record at once, and counts what the producer
// sends. It exists for BenchmarkPacking only, which measures how the
// producer packs events, not the service.
type packingServer struct {
	shards  int
	calls   atomic.Int64
	records atomic.Int64
	units   atomic.Int64 // PUT payload units: 25 KB (25,000 bytes) chunks per record, rounded up
	bytes   atomic.Int64
	seq     atomic.Int64
}

func (p *packingServer) bound(i int) *big.Int {
	n := new(big.Int).Lsh(big.NewInt(1), 128)
	return n.Div(n.Mul(n, big.NewInt(int64(i))), big.NewInt(int64(p.shards)))
}

func (p *packingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch r.Header.Get("X-Amz-Target") {
	case "Kinesis_20131202.ListShards":
		type rng struct{ StartingHashKey, EndingHashKey string }
		type shard struct {
			ShardId             string
			HashKeyRange        rng
			SequenceNumberRange struct{ StartingSequenceNumber string }
		}
		var out struct{ Shards []shard }
		for i := range p.shards {
			sh := shard{ShardId: fmt.Sprintf("shardId-%012d", i)}
			sh.HashKeyRange = rng{p.bound(i).String(), new(big.Int).Sub(p.bound(i+1), big.NewInt(1)).String()}
			sh.SequenceNumberRange.StartingSequenceNumber = "1"
			out.Shards = append(out.Shards, sh)
		}
		json.NewEncoder(w).Encode(out)
	case "Kinesis_20131202.PutRecords":
		var in struct {
			Records []struct {
				Data            []byte
				PartitionKey    string
				ExplicitHashKey string
			}
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		type result struct{ SequenceNumber, ShardId string }
		out := struct {
			FailedRecordCount int
			Records           []result
		}{}
		p.calls.Add(1)
		for _, rec := range in.Records {
			n := len(rec.Data) + len(rec.PartitionKey)
			p.records.Add(1)
			p.bytes.Add(int64(n))
			p.units.Add(int64((n + 24_999) / 25_000))
			h, ok := new(big.Int).SetString(rec.ExplicitHashKey, 10)
			if !ok {
				sum := md5.Sum([]byte(rec.PartitionKey))
				h = new(big.Int).SetBytes(sum[:])
			}
			shard := 0
			for shard+1 < p.shards && h.Cmp(p.bound(shard+1)) >= 0 {
				shard++
			}
			seq := strconv.FormatInt(p.seq.Add(1)+1e15, 10)
			out.Records = append(out.Records, result{seq, fmt.Sprintf("shardId-%012d", shard)})
		}
		json.NewEncoder(w).Encode(out)
	default:
		http.Error(w, `{"__type":"UnknownOperationException"}`, http.StatusBadRequest)
	}
}

// BenchmarkPacking offers ~250-byte events, one per Put as beacons arrive,
// at a steady rate in real time to a 4-shard stream behind a loopback
// packingServer and reports how they are packed: events per Kinesis record,
// events per PutRecords call, PUT payload units per million events (what
// Kinesis bills), and the rate achieved, which a busy machine keeps below
// the rate offered (TestPacking measures the same in fake time, exactly).
// b.N is the number of events.
func BenchmarkPacking(b *testing.B) {
	for _, bc := range []struct {
		name   string
		rate   int
		noAggr bool
	}{
		{"rate=1k", 1_000, false},
		{"rate=10k", 10_000, false},
		{"rate=50k", 50_000, false},
		{"rate=10k/no-aggregation", 10_000, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := &packingServer{shards: 4}
			hs := httptest.NewServer(srv)
			defer hs.Close()
			rate := packing(b, srv, newClient(b, hs.URL), b.N, bc.rate, bc.noAggr)
			n := float64(b.N)
			b.ReportMetric(n/float64(srv.records.Load()), "events/record")
			b.ReportMetric(n/float64(srv.calls.Load()), "events/call")
			b.ReportMetric(float64(srv.units.Load())*1e6/n, "units/Mevents")
			b.ReportMetric(rate, "events/s")
		})
	}
}

// handlerClient sends SDK requests straight to an http.Handler, in process.
type handlerClient struct{ h http.Handler }

func (c handlerClient) Do(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	return w.Result(), nil
}

// packing offers n events at rate per second, one per Put, to a Stream
// writing to srv, and returns the achieved rate.
func packing(tb testing.TB, srv *packingServer, client *kinesis.Client, n, rate int, noAggr bool) float64 {
	s, err := New(context.Background(), Config{Stream: "bench", Client: client, NoAggregation: noAggr})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	events := make([]stream.Entry, 1024)
	for i := range events {
		id := fmt.Sprintf("01JDX6T8Q5%016d", i*7919)
		events[i] = stream.Entry{Key: "demo/" + id, Data: fmt.Appendf(nil,
			`{"id":%q,"site":"demo","type":"pageview","ts":1764258000123,"url":"https://example.com/pricing/plan-%04d","ref":"https://news.example/","uid":"a-91f2%04d","rt":1764258000150,"path":"/pricing","device":"desktop"}`,
			id, i, i)}
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	sem := make(chan struct{}, 4096) // bounds callers in flight, as ingest's concurrency cap does
	start := time.Now()
	released := 0
	for released < n {
		time.Sleep(time.Millisecond)
		due := min(n, int(time.Since(start).Seconds()*float64(rate)))
		for ; released < due; released++ {
			e := events[released%len(events)]
			e.Key = fmt.Sprintf("%s-%d", e.Key, released)
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if _, err := s.Put(context.Background(), []stream.Entry{e}); err != nil {
					failed.Add(1)
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	cancel()
	<-done
	if n := failed.Load(); n > 0 {
		tb.Fatalf("%d Puts failed", n)
	}
	return float64(n) / elapsed.Seconds()
}
