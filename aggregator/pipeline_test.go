package aggregator

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/stream"
)

// heldSource holds every read until open is closed, so that the applier
// is waiting for the first commit before the first record is read.
type heldSource struct {
	*memSource
	open chan struct{}
}

func (s *heldSource) Read(ctx context.Context, shard, after string, limit int) (stream.Batch, error) {
	select {
	case <-s.open:
	case <-ctx.Done():
		return stream.Batch{}, ctx.Err()
	}
	return s.memSource.Read(ctx, shard, after, limit)
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
// flight accumulate into one commit larger than MaxBatch, bounded by
// MaxCommit, and that nothing is lost or counted twice on the way.
//
// Which goroutine runs when is the scheduler's choice (and -race shuffles
// it), so the test does not count on the reader getting somewhere before
// the applier: in a synctest bubble, synctest.Wait returns once both wait
// for each other or for the test. The reads start only once the applier
// waits for a commit, so the first read is the first commit; that apply is
// held until the reader stopped, having read as much as one commit takes.
func TestPipelinedCommits(t *testing.T) {
	const n, maxBatch = 200, 10
	tests := []struct {
		name      string
		maxCommit int
	}{
		{"accumulates", 1000},        // the second commit holds the rest of the shard
		{"bounded by MaxCommit", 25}, // the second commit is full
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
				src := &heldSource{memSource: newMemSource(5, stream.Shard{ID: "a"}), open: make(chan struct{})}
				for i := range n {
					e := event.Event{ID: "e" + strconv.Itoa(i), Site: "s", Type: "pageview", TS: base, RT: base, Path: "/x"}
					src.put("a", mustMarshal(t, &e))
				}
				st := &gatedStore{memStore: newMemStore(1), tip: make(chan struct{})}
				a, err := New(src, st, Config{Catalog: cat, MaxBatch: maxBatch, MaxCommit: tt.maxCommit, DiscoverEvery: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				go func() { errc <- a.Run(ctx) }()
				synctest.Wait() // the applier waits for a commit, the reader for the source
				close(src.open)
				synctest.Wait() // the first apply is held, the reader waits for the applier
				close(st.tip)
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
				for _, s := range st.sizes {
					if s > tt.maxCommit {
						t.Errorf("commit of %d records, MaxCommit is %d", s, tt.maxCommit)
					}
				}
				if len(st.sizes) < 2 || st.sizes[0] > maxBatch {
					t.Fatalf("commit sizes %v: want the first read alone, then more", st.sizes)
				}
				// The reader went on while the first apply was in flight,
				// as far as the shard or MaxCommit let it.
				if want := min(tt.maxCommit, n-st.sizes[0]); st.sizes[1] != want || want <= maxBatch {
					t.Errorf("commit sizes %v: the second holds %d records, want %d, more than MaxBatch %d", st.sizes, st.sizes[1], want, maxBatch)
				}
			})
		})
	}
}
