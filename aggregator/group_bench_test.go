package aggregator

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/stream"
	"github.com/pulsehq/pulse/stream/local"
)

// benchShards is divisible by 1, 2 and 3 instances.
const benchShards = 6

// fillLocal puts evs into a stream/local of the given shards and returns
// it with the last sequence number of every shard.
func fillLocal(b *testing.B, shards int, evs []metricEvent) (*local.Log, map[string]string) {
	b.Helper()
	log, err := local.Open(b.TempDir(), local.Config{Shards: shards})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { log.Close() })
	tips := map[string]string{}
	for i := 0; i < len(evs); i += 5000 {
		var entries []stream.Entry
		for j := i; j < min(i+5000, len(evs)); j++ {
			entries = append(entries, stream.Entry{Key: evs[j].key, Data: evs[j].data})
		}
		res, err := log.Put(context.Background(), entries)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if stream.CompareSeq(r.Seq, tips[r.Shard]) > 0 {
				tips[r.Shard] = r.Seq
			}
		}
	}
	return log, tips
}

type metricEvent struct {
	key  string
	data []byte
}

func benchEvents(b *testing.B, n int) []metricEvent {
	evs := referenceEvents(n, time.Now().UnixMilli())
	out := make([]metricEvent, len(evs))
	for i := range evs {
		out[i] = metricEvent{key: evs[i].PartitionKey(), data: mustMarshal(b, &evs[i])}
	}
	return out
}

func benchMember(b *testing.B, rdb redis.UniversalClient, src Source, st Store, cat *metric.Catalog, owner string, ttl time.Duration) *member {
	return startMember(b, rdb, src, st, cat, owner, ttl, func(c *Config) { *c = Config{Catalog: cat} })
}

// BenchmarkGroup measures the throughput of 1, 2 and 3 aggregator
// instances sharing a pre-filled stream/local of 6 shards through leases,
// into one real redis-server. The instances run in this process, each with
// its own Aggregator and lease.Manager (default lease TTL); the clock
// starts when the first lease is taken and stops when every shard is
// applied to its last record. On a 2-core machine the
// instances share the same cores, so the figure shows the cost of the
// split and the leases, not horizontal scaling.
func BenchmarkGroup(b *testing.B) {
	for _, n := range []int{0, 1, 2, 3} {
		name := fmt.Sprintf("instances=%d", n)
		if n == 0 {
			name = "unleased" // one Aggregator.Run over every shard, for comparison
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			srv := redistest.Start(b)
			rdb := srv.Client(b)
			cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
			if err != nil {
				b.Fatal(err)
			}
			log, tips := fillLocal(b, benchShards, benchEvents(b, b.N))
			store := redisagg.New(rdb, cat, redisagg.Config{})
			b.ResetTimer()
			var members []*member
			for i := range n {
				members = append(members, benchMember(b, rdb, log, store, cat, fmt.Sprintf("bench-%d", i), 0))
			}
			var start time.Time
			if n == 0 {
				a, err := New(log, store, Config{Catalog: cat})
				if err != nil {
					b.Fatal(err)
				}
				runCtx, cancel := context.WithCancel(ctx)
				errc := make(chan error, 1)
				start = time.Now()
				go func() { errc <- a.Run(runCtx) }()
				defer func() {
					cancel()
					if err := <-errc; err != nil {
						b.Error(err)
					}
				}()
			}
			applied := func() bool {
				if start.IsZero() && slices.Max(leaseCounts(members)) > 0 {
					start = time.Now()
				}
				return appliedTo(ctx, store, tips)
			}
			if !eventually(benchWait, time.Millisecond, applied) {
				b.Fatalf("not applied within %v", benchWait)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			held := make([]int, 0, n)
			for _, m := range members {
				held = append(held, len(m.mgr.Leases()))
				m.kill()
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(store.Stats().Commits), "commits")
			b.Logf("%d instances, leases held at the end %v", n, held)
		})
	}
}

// BenchmarkRebalance measures, with the default lease TTL (10s, renew every
// 3.3s), how long after an instance dies (killed: no Leave) or leaves
// (graceful stop: Leave) its shards make progress again at the other
// instances, under a steady trickle of events on every shard. Three
// instances, 6 shards; one run per measurement (-benchtime=1x).
func BenchmarkRebalance(b *testing.B) {
	for _, tc := range []struct {
		name     string
		graceful bool
	}{{"kill", false}, {"leave", true}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			srv := redistest.Start(b)
			rdb := srv.Client(b)
			cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
			if err != nil {
				b.Fatal(err)
			}
			log, _ := fillLocal(b, benchShards, benchEvents(b, 1000))
			store := redisagg.New(rdb, cat, redisagg.Config{})
			// A trickle of events keeps every shard moving.
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				evs := benchEvents(b, 200)
				tick := time.NewTicker(50 * time.Millisecond)
				defer tick.Stop()
				for i := 0; ctx.Err() == nil; i++ {
					var entries []stream.Entry
					for _, e := range evs {
						entries = append(entries, stream.Entry{Key: fmt.Sprintf("%s-%d", e.key, i), Data: e.data})
					}
					if _, err := log.Put(ctx, entries); err != nil && ctx.Err() == nil {
						b.Error(err)
						return
					}
					select {
					case <-tick.C:
					case <-ctx.Done():
					}
				}
			}()
			defer wg.Wait()
			defer cancel()
			var total time.Duration
			for i := 0; i < b.N; i++ {
				var members []*member
				for j := range 3 {
					members = append(members, benchMember(b, rdb, log, store, cat, fmt.Sprintf("r%d-%d", i, j), 0))
				}
				// Balanced: every instance holds two shards.
				if !eventually(benchWait, 10*time.Millisecond, func() bool { return slices.Equal(leaseCounts(members), []int{2, 2, 2}) }) {
					b.Fatalf("leases %v within %v, want 2 each", leaseCounts(members), benchWait)
				}
				victim := members[0]
				var shards []string
				for sh := range victim.mgr.Leases() {
					shards = append(shards, sh)
				}
				before := map[string]string{}
				start := time.Now()
				if tc.graceful {
					victim.stop(b)
				} else {
					victim.kill()
				}
				for _, sh := range shards {
					p, _ := store.Position(ctx, sh)
					before[sh] = p.Seq
				}
				moved := func() bool {
					for _, sh := range shards {
						if p, err := store.Position(ctx, sh); err != nil || p.Seq == before[sh] {
							return false
						}
					}
					return true
				}
				if !eventually(benchWait, 5*time.Millisecond, moved) {
					b.Fatalf("shards %v made no progress within %v of the loss", shards, benchWait)
				}
				total += time.Since(start)
				for _, m := range members[1:] {
					m.stop(b)
				}
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/rebalance")
		})
	}
}

func leaseCounts(ms []*member) []int {
	out := make([]int, len(ms))
	for i, m := range ms {
		out[i] = len(m.mgr.Leases())
	}
	return out
}
