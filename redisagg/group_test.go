package redisagg

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
)

// TestEnded records shard ends with fences, on every backend.
func TestEnded(t *testing.T) {
	ctx := context.Background()
	for name, rdb := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := New(rdb, catalog(t), Config{Namespace: "t-" + name})
			for _, tc := range []struct {
				shard   string
				fence   int64
				wantErr error
			}{
				{"a", 3, nil},
				{"a", 3, nil}, // again: idempotent
				{"b", 0, nil}, // never applied, unleased
				{"a", 2, ErrFenced},
			} {
				if err := st.End(ctx, tc.shard, tc.fence); !errors.Is(err, tc.wantErr) {
					t.Errorf("End(%s, %d): %v, want %v", tc.shard, tc.fence, err, tc.wantErr)
				}
			}
			ended, err := st.Ended(ctx, []string{"a", "b", "c"})
			if err != nil {
				t.Fatal(err)
			}
			if !ended["a"] || !ended["b"] || ended["c"] || len(ended) != 2 {
				t.Errorf("ended %v, want a and b", ended)
			}
			// The end mark fences an older writer's applies too.
			a := newAdder(st.cat).count("demo", "events", time.Now().UnixMilli(), 1)
			c := commit("1", "2", 1, a.u)
			c.Shard = "a"
			if err := st.Apply(ctx, c); !errors.Is(err, ErrFenced) || !isFencedErr(err) {
				t.Errorf("apply below the end mark's fence: %v, want a FencedError", err)
			}
		})
	}
}

func isFencedErr(err error) bool {
	var f interface{ Fenced() bool }
	return errors.As(err, &f) && f.Fenced()
}

// TestOverlapError checks the typed refusal a resuming writer learns its
// commit boundary from.
func TestOverlapError(t *testing.T) {
	ctx := context.Background()
	for name, rdb := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := New(rdb, catalog(t), Config{Namespace: "o-" + name})
			ts := time.Now().UnixMilli()
			if err := st.Apply(ctx, commit("1", "10", 1, newAdder(st.cat).count("demo", "events", ts, 1).u)); err != nil {
				t.Fatal(err)
			}
			err := st.Apply(ctx, commit("5", "20", 1, newAdder(st.cat).count("demo", "events", ts, 1).u))
			var ov *OverlapError
			if !errors.Is(err, ErrOverlap) || !errors.As(err, &ov) {
				t.Fatalf("overlapping commit: %v, want an OverlapError", err)
			}
			if ov.AppliedTo() != "10" || ov.First != "5" || ov.Last != "20" || ov.Shard != "shard-000001" {
				t.Errorf("overlap %+v, want applied to 10 of shard-000001, commit 5..20", ov)
			}
		})
	}
}

// hook fails the scripts of a cluster client after the first n that ran,
// as a crash between two site parts of an apply.
type hook struct{ n int }

func (h *hook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		n := cmd.Name()
		if n != "evalsha" && n != "eval" {
			return next(ctx, cmd)
		}
		if h.n == 0 {
			return errors.New("injected crash")
		}
		err := next(ctx, cmd)
		if err == nil {
			h.n-- // a script ran (not a NOSCRIPT answer)
		}
		return err
	}
}

// TestPendingOnCluster: a commit interrupted between its site parts on
// Redis Cluster leaves its end as pending, which the next commit ending
// there clears.
func TestPendingOnCluster(t *testing.T) {
	ctx := context.Background()
	c := redistest.StartCluster(t, 3)
	cat := catalog(t)
	ts := time.Now().UnixMilli()
	u := func() *metric.Update {
		a := newAdder(cat)
		for _, s := range []string{"demo", "shop", "blog", "docs"} {
			a.count(s, "events", ts, 1)
		}
		return a.u
	}
	crashing := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Options().Addrs})
	defer crashing.Close()
	crashing.AddHook(&hook{n: 3}) // the pending mark and two of four site parts
	if err := New(crashing, cat, Config{}).Apply(ctx, commit("1", "8", 1, u())); err == nil {
		t.Fatal("the interrupted apply succeeded")
	}
	st := New(c, cat, Config{})
	for _, step := range []struct {
		name        string
		first, last string
		wantErr     error
		wantPending string
	}{
		{"interrupted", "", "", nil, "8"},
		{"a commit straddling the pending end", "1", "9", ErrOverlap, "8"},
		{"the commit ending there", "1", "8", nil, ""},
		{"the next one", "9", "12", nil, ""},
	} {
		if step.last != "" {
			if err := st.Apply(ctx, commit(step.first, step.last, 1, u())); !errors.Is(err, step.wantErr) {
				t.Fatalf("%s: apply %s..%s: %v, want %v", step.name, step.first, step.last, err, step.wantErr)
			}
		}
		p, err := st.Pending(ctx, "shard-000001")
		if err != nil {
			t.Fatal(err)
		}
		if p != step.wantPending {
			t.Errorf("%s: pending %q, want %q", step.name, p, step.wantPending)
		}
	}
	// Every site counted the events of 1..8 and 9..12 once each.
	for _, s := range []string{"demo", "shop", "blog", "docs"} {
		_, r, err := st.Snapshot(ctx, SeriesQuery{Site: s, Metric: "events", Step: "1m", From: ts, To: ts})
		if err != nil {
			t.Fatal(err)
		}
		if got := sum(r, "", ""); got != 2 {
			t.Errorf("%s: %d events, want 2", s, got)
		}
	}
}
