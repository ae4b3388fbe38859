package aggregator

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/stream"
)

// tipSource closes tip once reads have returned at least after records.
type tipSource struct {
	*memSource
	after  int
	tip    chan struct{}
	once   sync.Once
	served atomic.Int64
}

func (s *tipSource) Read(ctx context.Context, shard, after string, limit int) (stream.Batch, error) {
	b, err := s.memSource.Read(ctx, shard, after, limit)
	if err == nil && s.served.Add(int64(len(b.Records))) >= int64(s.after) {
		s.once.Do(func() { close(s.tip) })
	}
	return b, err
}

// gatedStore holds its first apply until tip is closed, and records the
// size of every commit.
type gatedStore struct {
	*memStore
	tip   chan struct{}
	mu    sync.Mutex
	sizes []int
}

func (s *gatedStore) Apply(ctx context.Context, c *metric.Commit) error {
	s.mu.Lock()
	first := len(s.sizes) == 0
	first64, _ := strconv.Atoi(c.First)
	last64, _ := strconv.Atoi(c.Last)
	s.sizes = append(s.sizes, last64-first64+1)
	s.mu.Unlock()
	if first {
		select {
		case <-s.tip:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.memStore.Apply(ctx, c)
}

// TestPipelinedCommits checks that the reads made while an apply is in
// flight accumulate into one commit larger than MaxBatch, and that nothing
// is lost or counted twice on the way.
func TestPipelinedCommits(t *testing.T) {
	tests := []struct {
		name      string
		maxCommit int
		gate      int // the first apply waits until this many records were read
		wantMax   int // the largest commit, at least
	}{
		{"accumulates", 1000, 200, 11},
		// The first commit has at most 10 records, so 26 are read only
		// once the next commit is full.
		{"bounded by MaxCommit", 25, 26, 25},
	}
	for _, tt := range tests {
		// In memory only, so in a synctest bubble: polls cost no time.
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
				if err != nil {
					t.Fatal(err)
				}
				base := time.Now().UnixMilli()
				src := &tipSource{memSource: newMemSource(5, stream.Shard{ID: "a"}), after: tt.gate, tip: make(chan struct{})}
				const n = 200
				for i := range n {
					e := event.Event{ID: "e" + strconv.Itoa(i), Site: "s", Type: "pageview", TS: base, RT: base, Path: "/x"}
					src.put("a", mustMarshal(t, &e))
				}
				st := &gatedStore{memStore: newMemStore(1), tip: src.tip}
				a, err := New(src, st, Config{Catalog: cat, MaxBatch: 10, MaxCommit: tt.maxCommit, DiscoverEvery: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				go func() { errc <- a.Run(ctx) }()
				waitApplied(t, func(sh string) string { return mustPos(st.memStore, sh) }, map[string]string{"a": strconv.Itoa(n)})
				cancel()
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				k := metric.CountKey{Site: "s", Metric: "pageviews", Step: "1m", Bucket: metric.DefaultSteps()[1].Bucket(base)}
				if got := st.counts[k]; got != n {
					t.Errorf("count %d, want %d", got, n)
				}
				st.mu.Lock()
				defer st.mu.Unlock()
				biggest := 0
				for _, s := range st.sizes {
					biggest = max(biggest, s)
					if s > tt.maxCommit {
						t.Errorf("commit of %d records, MaxCommit is %d", s, tt.maxCommit)
					}
				}
				if biggest < tt.wantMax {
					t.Errorf("commit sizes %v: none above MaxBatch while an apply was in flight", st.sizes)
				}
			})
		})
	}
}
