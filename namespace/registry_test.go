package namespace

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/redisagg"
)

var (
	_ Backend = (*RedisBackend)(nil)
	_ Backend = (*FileBackend)(nil)
)

// backends are the registry stores every test runs on.
func backends(t *testing.T) map[string]func() Backend {
	rs := redistest.Start(t)
	return map[string]func() Backend{
		"file": func() Backend { return NewFileBackend(filepath.Join(t.TempDir(), "namespaces.json")) },
		"redis": func() Backend {
			c := rs.Client(t)
			if err := c.Del(context.Background(), redisagg.Keys{}.Registry()).Err(); err != nil {
				t.Fatal(err)
			}
			return NewRedisBackend(c)
		},
	}
}

const withNewMetric = "builtins: true\nmetrics:\n  - {name: signups, kind: count, types: [signup], dimensions: [plan]}\n"

// TestRegistryLifecycle walks a registry through bootstrap, build,
// promote and drop, checking each refusal, on both backends; a registry
// opened again over the same backend sees the same document.
func TestRegistryLifecycle(t *testing.T) {
	type step struct {
		name    string
		do      func(ctx context.Context, r *Registry) error
		wantErr error
	}
	steps := []step{
		{"bootstrap v1", func(ctx context.Context, r *Registry) error {
			i, err := r.Bootstrap(ctx, "v1", "")
			if err == nil && (i.Name != "v1" || i.State != Current) {
				t.Errorf("bootstrap: %+v", i)
			}
			return err
		}, nil},
		{"bootstrap again keeps v1 whatever the flag", func(ctx context.Context, r *Registry) error {
			i, err := r.Bootstrap(ctx, "other", "")
			if err == nil && i.Name != "v1" {
				t.Errorf("bootstrap again: current %s, want v1", i.Name)
			}
			return err
		}, nil},
		{"bad name", func(ctx context.Context, r *Registry) error {
			_, err := r.Create(ctx, Info{Name: "V2:x"})
			return err
		}, ErrBadName},
		{"bad metrics config", func(ctx context.Context, r *Registry) error {
			_, err := r.Create(ctx, Info{Name: "v2", MetricsConfig: "metrics: [{name: x}]"})
			return err
		}, nil},
		{"create v2 with a new metric", func(ctx context.Context, r *Registry) error {
			i, err := r.Create(ctx, Info{Name: "v2", MetricsConfig: withNewMetric})
			if err == nil && (i.State != Building || len(i.Metrics) != 6) {
				t.Errorf("create: %+v", i)
			}
			return err
		}, nil},
		{"create v2 again resumes it", func(ctx context.Context, r *Registry) error {
			i, err := r.Create(ctx, Info{Name: "v2"})
			if err == nil && i.MetricsConfig != withNewMetric {
				t.Errorf("resume: %+v", i)
			}
			return err
		}, nil},
		{"promote a building namespace", func(ctx context.Context, r *Registry) error {
			_, err := r.Promote(ctx, "v2")
			return err
		}, ErrConflict},
		{"promote an unknown namespace", func(ctx context.Context, r *Registry) error {
			_, err := r.Promote(ctx, "v9")
			return err
		}, ErrNotFound},
		{"v2 ready", func(ctx context.Context, r *Registry) error { return r.SetState(ctx, "v2", Ready) }, nil},
		{"create over a ready namespace resumes it", func(ctx context.Context, r *Registry) error {
			i, err := r.Create(ctx, Info{Name: "v2"})
			if err == nil && i.State != Building {
				t.Errorf("resume a ready namespace: %+v", i)
			}
			return err
		}, nil},
		{"v2 ready again", func(ctx context.Context, r *Registry) error { return r.SetState(ctx, "v2", Ready) }, nil},
		{"create over the current namespace", func(ctx context.Context, r *Registry) error {
			_, err := r.Create(ctx, Info{Name: "v1"})
			return err
		}, ErrConflict},
		{"promote v2", func(ctx context.Context, r *Registry) error {
			prev, err := r.Promote(ctx, "v2")
			if err == nil && prev != "v1" {
				t.Errorf("promote: previous %s", prev)
			}
			return err
		}, nil},
		{"drop the current namespace", func(ctx context.Context, r *Registry) error { return r.Remove(ctx, "v2") }, ErrConflict},
		{"drop v1", func(ctx context.Context, r *Registry) error { return r.Remove(ctx, "v1") }, nil},
		{"state after", func(ctx context.Context, r *Registry) error {
			d, err := r.Load(ctx)
			if err != nil {
				return err
			}
			cat, cerr := d.Namespaces[0].Catalog()
			if d.Current != "v2" || len(d.Namespaces) != 1 || d.Namespaces[0].State != Current || cerr != nil {
				t.Errorf("registry %+v (catalog %v)", d, cerr)
			} else if _, ok := cat.Metric("signups"); !ok {
				t.Errorf("v2's catalog lacks its new metric")
			}
			return nil
		}, nil},
	}
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			be := mk()
			clock := time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)
			now := func() time.Time { clock = clock.Add(time.Second); return clock }
			for _, s := range steps {
				// A fresh Registry per step: everything lives in the backend.
				err := s.do(ctx, New(be, Config{Now: now}))
				switch {
				case s.wantErr == nil && s.name == "bad metrics config":
					if err == nil {
						t.Fatalf("%s: no error", s.name)
					}
				case s.wantErr == nil && err != nil:
					t.Fatalf("%s: %v", s.name, err)
				case s.wantErr != nil && !errors.Is(err, s.wantErr):
					t.Fatalf("%s: error %v, want %v", s.name, err, s.wantErr)
				}
			}
		})
	}
}

// TestDropKeys drops the keys of a namespace of a real redis-server, and
// refuses a name the registry would not hold (a SCAN pattern would match
// other namespaces). What a drop leaves is redisagg's TestDrop.
func TestDropKeys(t *testing.T) {
	ctx := context.Background()
	c := redistest.Start(t).Client(t)
	v2 := redisagg.KeysFor("v2")
	for _, tc := range []struct {
		name    string
		want    int64
		wantErr error
	}{
		{"*", 0, ErrBadName},
		{"v2:x", 0, ErrBadName},
		{"v2", 2, nil},
	} {
		for _, k := range []string{v2.DeltaLog("demo", "events"), v2.LeaseMembers()} {
			if err := c.Set(ctx, k, "x", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		n, err := DropKeys(ctx, c, tc.name)
		if n != tc.want || !errors.Is(err, tc.wantErr) {
			t.Fatalf("DropKeys(%q): %d, %v; want %d, %v", tc.name, n, err, tc.want, tc.wantErr)
		}
	}
}

// TestPromoteBoundedRange refuses to promote a namespace replayed with an
// end: the live aggregator would continue after events it never counted.
func TestPromoteBoundedRange(t *testing.T) {
	ctx := context.Background()
	r := New(NewFileBackend(filepath.Join(t.TempDir(), "r.json")), Config{})
	if _, err := r.Bootstrap(ctx, "v1", ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		from, to int64
		wantErr  error
	}{
		{"window", 1000, 2000, ErrConflict},
		{"from-only", 1000, 0, nil},
	} {
		if _, err := r.Create(ctx, Info{Name: c.name, From: c.from, To: c.to}); err != nil {
			t.Fatal(err)
		}
		if err := r.SetState(ctx, c.name, Ready); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Promote(ctx, c.name); !errors.Is(err, c.wantErr) && (err != nil || c.wantErr != nil) {
			t.Errorf("promote %s: %v, want %v", c.name, err, c.wantErr)
		}
	}
}

// TestRegistryConcurrentProcesses runs updates from several registries
// (processes) on one Redis at once: none is lost.
func TestRegistryConcurrentProcesses(t *testing.T) {
	ctx := context.Background()
	rs := redistest.Start(t)
	const procs, each = 4, 5
	errs := make(chan error, procs*each)
	for p := 0; p < procs; p++ {
		r := New(NewRedisBackend(rs.Client(t)), Config{})
		go func() {
			for i := 0; i < each; i++ {
				_, err := r.Create(ctx, Info{Name: fmt.Sprintf("p%d-%d", p, i)})
				errs <- err
			}
		}()
	}
	for i := 0; i < procs*each; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	d, err := New(NewRedisBackend(rs.Client(t)), Config{}).Load(ctx)
	if err != nil || len(d.Namespaces) != procs*each {
		t.Fatalf("%d namespaces registered, want %d (%v)", len(d.Namespaces), procs*each, err)
	}
}
