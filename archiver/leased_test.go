package archiver

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sync/errgroup"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/lease"
)

// member is one instance of an archive group: its archiver, under a
// lease manager of its own, with checkpoints of its own on the shared key.
type member struct {
	a      *Archiver
	m      *lease.Manager
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func join(t *testing.T, e *env, store archive.ObjectStore, owner string) *member {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := testConfig()
	cfg.Registerer = reg
	ck := NewRedisCheckpoints(e.rdb, "test")
	m, err := lease.New(e.rdb, lease.Config{Namespace: LeaseNamespace, Owner: owner, TTL: 300 * time.Millisecond, Sticky: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mb := &member{a: New(e.log, store, ck, cfg), m: m, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() {
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return m.Run(gctx, mb.a.Workable) })
		g.Go(func() error { return mb.a.RunLeased(gctx, m) })
		mb.done <- g.Wait()
	}()
	t.Cleanup(func() { mb.stop(t, false) })
	return mb
}

// stop stops the member; with leave it leaves the group, otherwise its
// lease expires after the TTL, as if the process died.
func (mb *member) stop(t *testing.T, leave bool) {
	t.Helper()
	if mb.cancel == nil {
		return
	}
	mb.cancel()
	mb.cancel = nil
	if err := <-mb.done; err != nil {
		t.Errorf("member: %v", err)
	}
	if leave {
		if err := mb.m.Leave(context.Background()); err != nil {
			t.Errorf("leave: %v", err)
		}
	}
}

// active is the member's pulse_archive_active.
func (mb *member) active() float64 {
	var m dto.Metric
	if err := mb.a.met.active.Write(&m); err != nil {
		panic(err)
	}
	return m.GetGauge().GetValue()
}

// lost is the member's pulse_lease_lost_total: leases it lost without
// giving them up.
func (mb *member) lost(t *testing.T) float64 {
	t.Helper()
	mfs, err := mb.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "pulse_lease_lost_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// TestRunLeased runs two archivers of one group on one redis-server: the
// first archives, the second stands by; once the first stops (leaving the
// group, or dying so its lease expires) the second takes over, and the
// archive holds every event exactly once.
func TestRunLeased(t *testing.T) {
	for _, tc := range []struct {
		name  string
		leave bool
	}{
		{"leave", true},
		{"expire", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 21)
			store := archive.NewDir(filepath.Join(t.TempDir(), "archive"))
			first := join(t, e, store, "a")
			waitFor(t, "the first member archiving", func() bool { return first.active() == 1 })
			second := join(t, e, store, "b")
			// A lease lost under load stops, flushes and restarts the
			// archiver: slower, not wrong; say so when a wait ran out.
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("leases lost: first %v, second %v", first.lost(t), second.lost(t))
				}
			})
			e.put(t, 1500)
			e.waitCaughtUp(t, "caught up")
			// Long enough for the second member to join and see the
			// lease held.
			time.Sleep(500 * time.Millisecond)
			if second.active() != 0 || first.active() != 1 {
				t.Fatalf("active: first %v, second %v; want 1, 0", first.active(), second.active())
			}

			first.stop(t, tc.leave)
			if first.active() != 0 {
				t.Errorf("the stopped member is still active")
			}
			e.put(t, 1500)
			waitFor(t, "the second member archiving", func() bool { return second.active() == 1 })
			e.waitCaughtUp(t, "caught up again")
			second.stop(t, true)
			checkArchive(t, store, e.sent)
		})
	}
}

// TestRunLeasedUnfenced: RunLeased refuses checkpoints that cannot be
// fenced, since a deposed holder could then overwrite them.
func TestRunLeasedUnfenced(t *testing.T) {
	e := newEnv(t, 22)
	a := New(e.log, archive.NewDir(t.TempDir()), NewFileCheckpoints(t.TempDir()), testConfig())
	m, err := lease.New(e.rdb, lease.Config{Namespace: LeaseNamespace, Owner: "a", TTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RunLeased(context.Background(), m); err == nil {
		t.Fatal("RunLeased with FileCheckpoints: no error")
	}
}
