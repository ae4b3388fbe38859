package replay

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsehq/pulse/aggregator"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
)

// interrupting cancels a build after its n-th apply: an interruption at a
// commit boundary, the only kind a crash can leave (an apply is atomic).
type interrupting struct {
	*redisagg.Store
	n      int64
	cancel context.CancelFunc
	count  atomic.Int64
}

func (s *interrupting) Apply(ctx context.Context, c *metric.Commit) error {
	err := s.Store.Apply(ctx, c)
	if s.count.Add(1) == s.n {
		s.cancel()
	}
	return err
}

// TestBuildResumes builds a namespace in one go and another in steps,
// each interrupted after a few commits and continued by a new Build with
// a new Source (as after a restart), and checks both end with the same
// aggregates, counter by counter, in a real redis-server.
func TestBuildResumes(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		frac    float64
		from    int64
		stopsAt []int64 // applies after which each interrupted run stops
	}{
		{"archive and stream", 0.6, 0, []int64{1, 3, 2}},
		{"stream only", 0, 0, []int64{2, 2}},
		{"range", 0.8, 1, []int64{1, 4}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			f := newFixture(t, 1000, tc.frac, 60)
			var from, to int64
			if tc.from > 0 {
				from, to = f.base.Add(time3h(1)).UnixMilli(), f.base.Add(time3h(3)).UnixMilli()
			}
			cfg := BuildConfig{Aggregator: aggregator.Config{Catalog: cat, MaxBatch: 100, MaxCommit: 100}, Every: 10 * time.Millisecond}
			whole := "whole" + string(rune('a'+i))
			steps := "steps" + string(rune('a'+i))
			if err := Build(ctx, f.source(from, to), redisagg.New(rdb, cat, redisagg.Config{Namespace: whole, NoDeltas: true}), cfg); err != nil {
				t.Fatalf("whole build: %v", err)
			}
			st := redisagg.New(rdb, cat, redisagg.Config{Namespace: steps, NoDeltas: true})
			for _, n := range tc.stopsAt {
				bctx, bcancel := context.WithCancel(ctx)
				err := Build(bctx, f.source(from, to), &interrupting{Store: st, n: n, cancel: bcancel}, cfg)
				bcancel()
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("interrupted build: %v, want context.Canceled", err)
				}
			}
			if err := Build(ctx, f.source(from, to), st, cfg); err != nil {
				t.Fatalf("resumed build: %v", err)
			}
			rep, err := redisagg.Compare(ctx, rdb, cat, whole, steps, 0, 1<<52)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Drift) > 0 || rep.Counters == 0 {
				t.Fatalf("resumed build differs in %d of %d counters: %+v", len(rep.Drift), rep.Counters, rep.Drift[:min(5, len(rep.Drift))])
			}
			t.Logf("%d buckets, %d counters equal", rep.Buckets, rep.Counters)
		})
	}
}
