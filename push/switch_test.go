package push

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// nsSources is the switchable namespace pointer a server gives the hub.
type nsSources struct {
	cur atomic.Pointer[MemorySource]
}

var _ Source = (*nsSources)(nil)

func (n *nsSources) Snapshot(ctx context.Context, q SnapshotQuery) (int64, []Series, error) {
	return n.cur.Load().Snapshot(ctx, q)
}
func (n *nsSources) Listen(context.Context) (Listener, error) {
	return &nsListener{ns: n, inner: map[*MemorySource]Listener{}, out: make(chan Notice), done: make(chan struct{})}, nil
}
func (n *nsSources) Range(ctx context.Context, site, metric string, from, count int64) ([]Delta, error) {
	return n.cur.Load().Range(ctx, site, metric, from, count)
}
func (n *nsSources) Last(ctx context.Context, site, metric string) (int64, error) {
	return n.cur.Load().Last(ctx, site, metric)
}

// nsListener subscribes on the current namespace's source, as a Redis
// listener subscribes to the current namespace's channels.
type nsListener struct {
	ns    *nsSources
	mu    sync.Mutex
	inner map[*MemorySource]Listener
	out   chan Notice
	done  chan struct{}
	wg    sync.WaitGroup
}

func (l *nsListener) current(ctx context.Context) (Listener, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	src := l.ns.cur.Load()
	if in := l.inner[src]; in != nil {
		return in, nil
	}
	in, err := src.Listen(ctx)
	if err != nil {
		return nil, err
	}
	l.inner[src] = in
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for n := range in.Notices() {
			select {
			case l.out <- n:
			case <-l.done:
				return
			}
		}
	}()
	return in, nil
}

func (l *nsListener) Subscribe(ctx context.Context, site, metric string) error {
	in, err := l.current(ctx)
	if err != nil {
		return err
	}
	return in.Subscribe(ctx, site, metric)
}

func (l *nsListener) Unsubscribe(ctx context.Context, site, metric string) error {
	in, err := l.current(ctx)
	if err != nil {
		return err
	}
	return in.Unsubscribe(ctx, site, metric)
}

func (l *nsListener) Notices() <-chan Notice { return l.out }

func (l *nsListener) Close() error {
	close(l.done)
	l.mu.Lock()
	for _, in := range l.inner {
		_ = in.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	close(l.out)
	return nil
}

// TestSwitch moves a hub with live subscriptions from namespace v1 to v2
// (built meanwhile, with a shorter log than v1's): every subscription gets
// a reset snapshot of v2, then v2's deltas with no gap, and nothing more of
// v1.
func TestSwitch(t *testing.T) {
	e := newEnv(t)
	v1 := e.src
	v2 := NewMemorySource(e.cat, MemoryConfig{})
	ns := &nsSources{}
	ns.cur.Store(v1)
	h, ts := serveHub(t, New(ns, Config{Catalog: e.cat}), loopback)
	ctx := context.Background()
	now := time.Now().UnixMilli()
	applyTo := func(src *MemorySource, n int64, paths ...string) {
		t.Helper()
		(&env{t: t, cat: e.cat, src: src}).apply(now, n, paths...)
	}

	for range 5 {
		applyTo(v1, 1, "/a")
	}
	c := newClient(t, ts)
	c.subscribe("total", "10s", "", nil)
	c.subscribe("paths", "1m", "path", nil)
	c.until(0, "total", "paths")
	for range 3 {
		applyTo(v1, 1, "/a", "/b")
	}
	c.until(8, "total", "paths") // v1's log holds 8 entries
	for range 3 {
		applyTo(v2, 2, "/a", "/c")
	}

	if err := h.Switch(ctx, nil, func() { ns.cur.Store(v2) }); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	for c.subs["total"].resets == 0 || c.subs["paths"].resets == 0 {
		if _, err := c.next(rctx); err != nil {
			t.Fatalf("waiting for reset snapshots: %v (%s)", err, c.describe())
		}
	}
	for _, id := range []string{"total", "paths"} {
		if v := c.subs[id]; v.seq != 3 {
			t.Fatalf("%s: reset snapshot at seq %d, want v2's log head 3 (below v1's 8)", id, v.seq)
		}
	}
	// Live in v2 from where the build ended; v1 no longer reaches clients.
	for range 4 {
		applyTo(v2, 1, "/c", "/d")
	}
	applyTo(v1, 100, "/zzz")
	c.until(7, "total", "paths")
	from := now - 15*60_000
	v2env := &env{t: t, cat: e.cat, src: v2}
	checkState(t, "total", c.subs["total"].state, v2env.want("10s", "", from, now))
	checkState(t, "paths", c.subs["paths"].state, v2env.want("1m", "path", from, now))
}
