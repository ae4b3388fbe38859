package aggregator

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
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

var (
	_ Source = (*local.Log)(nil)
	_ Store  = (*redisagg.Store)(nil)
)

// flakyStore wraps the real store: some replies are lost after the apply
// landed, and some applies are followed by discarding the aggregator.
type flakyStore struct {
	Store
	mu      sync.Mutex
	rng     *rand.Rand
	discard func() // cancels the running aggregator
	lost    int
}

func (s *flakyStore) Apply(ctx context.Context, c *metric.Commit) error {
	err := s.Store.Apply(ctx, c)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch x := s.rng.IntN(20); {
	case err != nil:
	case x == 0:
		s.lost++
		return errors.New("injected lost reply")
	case x <= 3 && s.discard != nil:
		s.discard()
	}
	return err
}

func (s *flakyStore) setDiscard(f func()) {
	s.mu.Lock()
	s.discard = f
	s.mu.Unlock()
}

// TestIntegrationExactlyOnce puts events with retries and late,
// out-of-order and future timestamps into stream/local, aggregates them into
// a real redis-server through redisagg while the aggregator is discarded and
// restarted between applies and replies get lost, and compares the stored
// counters with a ground truth computed from the events.
func TestIntegrationExactlyOnce(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	log, err := local.Open(t.TempDir(), local.Config{Shards: 3, ReadWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()

	w := makeWorkload(7, 3000, time.Now().UnixMilli())
	entries := make([]stream.Entry, len(w.events))
	for i := range w.events {
		entries[i] = stream.Entry{Key: w.events[i].PartitionKey(), Data: mustMarshal(t, &w.events[i])}
	}
	res, err := log.Put(ctx, entries)
	if err != nil {
		t.Fatal(err)
	}
	tips := map[string]string{}
	for _, r := range res {
		if stream.CompareSeq(r.Seq, tips[r.Shard]) > 0 {
			tips[r.Shard] = r.Seq
		}
	}

	store := &flakyStore{Store: redisagg.New(rdb, cat, redisagg.Config{}), rng: rand.New(rand.NewPCG(1, 1))}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	runs := 0
	go func() {
		defer wg.Done()
		for {
			runCtx, stop := context.WithCancel(ctx)
			store.setDiscard(stop)
			a, err := New(log, store, Config{Catalog: cat, MaxBatch: 50, MaxCommit: 50, DiscoverEvery: 50 * time.Millisecond})
			if err != nil {
				t.Error(err)
				stop()
				return
			}
			runs++
			go func() {
				select {
				case <-done:
				case <-runCtx.Done():
				}
				stop()
			}()
			if err := a.Run(runCtx); err != nil {
				t.Error(err)
			}
			stop()
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	waitFor(t, func() bool { return appliedTo(ctx, store, tips) })
	close(done)
	wg.Wait()
	if runs < 3 || store.lost == 0 {
		t.Errorf("%d aggregator runs, %d lost replies: faults not exercised", runs, store.lost)
	}

	want := truth(cat, w.unique)
	compareStored(t, rdb, want)
	for k, vs := range want.Uniques {
		key := "p:v1:{" + k.Site + "}:u:" + k.Metric + ":" + k.Step + ":" + strconv.FormatInt(k.Bucket, 10)
		c, err := rdb.PFCount(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if d := c - int64(len(vs)); d > 1+int64(len(vs))/50 || d < -1-int64(len(vs))/50 {
			t.Errorf("%s: %d distinct, want about %d", key, c, len(vs))
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	if !eventually(60*time.Second, 20*time.Millisecond, cond) {
		t.Fatal("not done within 60s")
	}
}

// appliedTo reports whether every shard's stored position reached its tip.
func appliedTo(ctx context.Context, st Store, tips map[string]string) bool {
	for sh, seq := range tips {
		if p, err := st.Position(ctx, sh); err != nil || p.Seq != seq {
			return false
		}
	}
	return true
}

// storedCounts reads every count hash: p:v1:{site}:c:metric:step:bucket
// with field "_" the total and dim "\x1f" value the dimension counts.
func storedCounts(t *testing.T, rdb *redis.Client, kind string) map[metric.CountKey]int64 {
	ctx := context.Background()
	out := map[metric.CountKey]int64{}
	keys, err := rdb.Keys(ctx, "p:v1:*:"+kind+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		site := key[strings.Index(key, "{")+1 : strings.Index(key, "}")]
		parts := strings.Split(key[strings.Index(key, "}:"+kind+":")+4:], ":")
		if len(parts) != 3 {
			t.Fatalf("unexpected key %q", key)
		}
		b, _ := strconv.ParseInt(parts[2], 10, 64)
		h, err := rdb.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range h {
			n, _ := strconv.ParseInt(v, 10, 64)
			k := metric.CountKey{Site: site, Metric: parts[0], Step: parts[1], Bucket: b}
			switch dim, val, ok := strings.Cut(f, "\x1f"); {
			case f == "_":
			case ok:
				k.Dim, k.Value = dim, val
			default:
				continue // bookkeeping fields such as "#path"
			}
			out[k] = n
		}
	}
	return out
}
