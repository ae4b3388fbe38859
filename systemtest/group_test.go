package systemtest

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pulsehq/pulse/internal/kinesistest"
	"github.com/pulsehq/pulse/internal/redistest"
)

// traffic posts events from workers goroutines to the servers (round
// robin) until stop is closed: bodies of 1 to 20 events, a tenth of them
// client retries (same id, same content, same User-Agent) of events already
// acknowledged. Every acknowledged event goes into tr. It returns once the
// workers stopped; a failed request fails the test.
func traffic(ctx context.Context, t *testing.T, servers []*server, tr *truth, seed uint64, now time.Time, workers int, stop <-chan struct{}) {
	var wg sync.WaitGroup
	var seqMu sync.Mutex
	seq := 0
	nextSeq := func() int { seqMu.Lock(); defer seqMu.Unlock(); seq++; return seq }
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)+100))
			sent := make([][]genEvent, len(userAgents)) // acknowledged, by User-Agent
			for req := 0; ; req++ {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				ua := r.IntN(3)
				if r.IntN(10) == 0 {
					ua = 3 // a bot
				}
				var evs []genEvent
				var lines [][]byte
				for range 1 + r.IntN(20) {
					e := newGenEvent(r, nextSeq(), now, ua)
					if old := sent[ua]; len(old) > 0 && r.IntN(10) == 0 {
						e = old[r.IntN(len(old))] // a client retry
					}
					evs = append(evs, e)
					lines = append(lines, e.json())
				}
				s := servers[(w+req)%len(servers)]
				code, res, err := s.post(ctx, bytes.Join(lines, []byte("\n")), userAgents[ua].UA)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("post: %v", err)
					}
					return
				}
				if code != 202 || res.Accepted != len(evs) {
					t.Errorf("collect answered %d accepting %d of %d: %+v", code, res.Accepted, len(evs), res.Rejected)
					return
				}
				for _, e := range evs {
					tr.add(e)
					sent[ua] = append(sent[ua], e)
				}
				time.Sleep(time.Duration(5+r.IntN(20)) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
}

// waitEvents waits until tr holds at least n distinct events.
func waitEvents(ctx context.Context, t *testing.T, tr *truth, n int) {
	t.Helper()
	for {
		have := tr.size()
		if have >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("only %d of %d events acknowledged", have, n)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logHas reports whether the server's log holds substr.
func (s *server) logHas(t *testing.T, substr string) bool {
	b, err := os.ReadFile(s.log.Name())
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(substr))
}

// TestAggregatorGroupKinesis runs Pulse as a fleet on the Kinesis emulator
// and a real redis-server: two ingest processes (their PutRecords go
// through a proxy that fails a record of every fifth call with
// ProvisionedThroughputExceeded, which the producer must retry) and three
// aggregate processes sharing a 4-shard stream through leases. Mid-run one
// aggregator is killed with SIGKILL, the stream is resharded 4 -> 8 with
// UpdateShardCount, and a fourth aggregator joins. Clients retry events
// (same ids), some across the reshard. Every aggregate must equal the
// ground truth exactly (uniques within HyperLogLog's error).
//
// The emulator puts about 1,000 records/s: the traffic is a few thousand
// events, packed by KPL aggregation.
func TestAggregatorGroupKinesis(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	endpoint := kinesistest.Start(t)
	kc := kinesisClient(endpoint)
	name := kinesistest.CreateStream(t, kc, 4)
	proxy, proxyURL := startFailingProxy(t, endpoint, 5)
	rds := redistest.Start(t).URL()
	common := []string{"--stream", "kinesis://" + name, "--redis", rds, "--rate-ip", "-1", "--rate-site", "-1"}

	awsEnv(t, endpoint)
	aggArgs := append([]string{"--roles", "aggregate", "--lease-ttl", "2s"}, common...)
	var aggs []*server
	for range 3 {
		aggs = append(aggs, newServer(t, aggArgs...))
	}
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", proxyURL)
	ingests := []*server{
		newServer(t, append([]string{"--roles", "ingest"}, common...)...),
		newServer(t, append([]string{"--roles", "ingest"}, common...)...),
	}

	now := time.Now()
	tr := newTruth()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		traffic(ctx, t, ingests, tr, seed, now, 4, stop)
	}()

	waitEvents(ctx, t, tr, 700)
	aggs[0].stop(syscall.SIGKILL)
	t.Log("aggregator 0 killed")

	waitEvents(ctx, t, tr, 1400)
	if _, err := kc.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{
		StreamName: aws.String(name), TargetShardCount: aws.Int32(8), ScalingType: types.ScalingTypeUniformScaling,
	}); err != nil {
		t.Fatalf("update shard count: %v", err)
	}
	kinesistest.WaitActive(t, kc, name)
	t.Log("resharded 4 -> 8")

	waitEvents(ctx, t, tr, 2100)
	joined := newServer(t, aggArgs...)
	t.Log("aggregator 3 joined")

	waitEvents(ctx, t, tr, 2800)
	close(stop)
	<-done
	if t.Failed() {
		return
	}
	t.Logf("%d distinct events acknowledged; %d PutRecords calls had a record refused", tr.size(), proxy.failedRecords())
	if proxy.failedRecords() == 0 {
		t.Error("no per-record failure was injected")
	}

	waitExact(ctx, t, func() *server { return ingests[0] }, tr, now)
	var misplaced, dropped float64
	for _, s := range ingests {
		misplaced += s.metricValue(t, "pulse_kinesis_misplaced_entries_total")
	}
	for _, a := range append(aggs[1:], joined) {
		dropped += a.metricValue(t, "pulse_kinesis_out_of_range_records_total")
	}
	t.Logf("after the reshard: %v entries of aggregated records on the wrong child put again, %v out-of-range copies dropped by readers", misplaced, dropped)

	shards, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(shards.Shards); n < 12 {
		t.Errorf("%d shards listed, want 4 closed parents and 8 children", n)
	}
	if !joined.logHas(t, "shard lease acquired") {
		t.Error("the joining aggregator never got a shard lease")
	}
	for i, a := range aggs[1:] {
		if !a.logHas(t, `"role":"aggregate"`) || !a.logHas(t, "shard lease acquired") {
			t.Errorf("aggregator %d never got a shard lease", i+1)
		}
	}
	// A graceful stop leaves the group at once.
	for _, a := range append(aggs[1:], joined) {
		a.stop(syscall.SIGTERM)
		if !a.logHas(t, "left the aggregator group") {
			t.Error("an aggregator stopped with SIGTERM did not leave the group")
		}
	}
}

// TestRedisClusterExact runs pulse on a Redis Cluster of three masters
// (--redis redis-cluster://...), kills it with SIGKILL and restarts it
// under traffic, and checks that every aggregate equals the ground truth:
// each site part of a commit is applied atomically and idempotently in its
// slot, and a worker resuming after a crash between parts ends its first
// commit where the interrupted one did.
func TestRedisClusterExact(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	s := newServer(t, "--redis", "redis-cluster://"+strings.Join(c.Options().Addrs, ","), "--shards", "4",
		"--roles", "ingest,aggregate,push", "--lease-ttl", "1s")
	runCrash(t, s, seed)
}

// metricValue reads one unlabelled sample from the server's /metrics (0
// when absent).
func (s *server) metricValue(t *testing.T, name string) float64 {
	resp, err := http.Get(s.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}
