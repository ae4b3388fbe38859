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

// trickleSource is one shard whose records arrive over time: a Read waits
// for a record after its position, or for its context, as stream/local's
// does.
type trickleSource struct {
	mu     sync.Mutex
	recs   []stream.Record
	notify chan struct{}
}

func newTrickleSource() *trickleSource { return &trickleSource{notify: make(chan struct{})} }

func (s *trickleSource) put(data []byte) {
	s.mu.Lock()
	s.recs = append(s.recs, stream.Record{Seq: strconv.Itoa(len(s.recs) + 1), Data: data})
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
}

func (s *trickleSource) Shards(context.Context) ([]stream.Shard, error) {
	return []stream.Shard{{ID: "s"}}, nil
}

func (s *trickleSource) Read(ctx context.Context, shard, after string, limit int) (stream.Batch, error) {
	i := 0
	if after != "" {
		i, _ = strconv.Atoi(after)
	}
	for {
		s.mu.Lock()
		if i < len(s.recs) {
			end := min(i+limit, len(s.recs))
			b := stream.Batch{Records: append([]stream.Record(nil), s.recs[i:end]...), BehindRecords: int64(len(s.recs) - end)}
			s.mu.Unlock()
			return b, nil
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return stream.Batch{}, ctx.Err()
		}
	}
}

func (s *trickleSource) ReadFrom(ctx context.Context, shard, from string, limit int) (stream.Batch, error) {
	return s.Read(ctx, shard, stream.PrevSeq(from), limit)
}

// TestMinCommitInterval sends one event a millisecond for a second: with
// the interval a caught-up worker makes about one commit per interval, not
// one per read, and counts every event once; an event after a quiet spell
// is applied at once.
func TestMinCommitInterval(t *testing.T) {
	for _, tc := range []struct {
		name       string
		interval   time.Duration
		minC, maxC int
	}{
		{"100ms", 100 * time.Millisecond, 5, 15},
		{"off", -1, 500, 1001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cat := testCatalog(t)
				src, st := newTrickleSource(), newMemStore(1)
				a, err := New(src, st, Config{Catalog: cat, MinCommitInterval: tc.interval, DiscoverEvery: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				go func() { errc <- a.Run(ctx) }()
				base := time.Now().UnixMilli()
				const n = 1000
				for i := range n {
					e := event.Event{ID: strconv.Itoa(i), Site: "s", Type: "pageview", TS: base, RT: base}
					src.put(mustMarshal(t, &e))
					time.Sleep(time.Millisecond)
				}
				waitApplied(t, func(sh string) string { return mustPos(st, sh) }, map[string]string{"s": strconv.Itoa(n)})
				st.mu.Lock()
				commits := st.applied
				st.mu.Unlock()
				t.Logf("%d commits", commits)
				if commits < tc.minC || commits > tc.maxC {
					t.Errorf("%d commits for %d events over 1s, want %d to %d", commits, n, tc.minC, tc.maxC)
				}
				// A quiet spell, then one event: applied with no (fake)
				// time passing.
				time.Sleep(time.Second)
				e := event.Event{ID: "late", Site: "s", Type: "pageview", TS: base, RT: base}
				src.put(mustMarshal(t, &e))
				synctest.Wait()
				if got := mustPos(st, "s"); got != strconv.Itoa(n+1) {
					t.Errorf("after a quiet spell, one event: applied to %s, want %d at once", got, n+1)
				}
				cancel()
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				k := metric.CountKey{Site: "s", Metric: "pageviews", Step: "1d", Bucket: metric.DefaultSteps()[3].Bucket(base)}
				if got := st.counts[k]; got != n+1 {
					t.Errorf("pageviews %d, want %d", got, n+1)
				}
			})
		})
	}
}
