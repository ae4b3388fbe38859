package lease

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	testTTL  = 400 * time.Millisecond
	converge = 30 * time.Second // generous: a loaded -race run is slow, a correct one converges anyway
)

// registry is the test's view of which instance runs a worker for which
// shard. It fails the test when two instances run one shard at once or a
// shard's worker starts with a fence not above every fence before it.
type registry struct {
	t       *testing.T
	mu      sync.Mutex
	running map[string]string // shard -> owner
	last    map[string]int64  // shard -> highest fence started
	closed  bool              // the test is tearing down: instances die in any order
}

func newRegistry(t *testing.T) *registry {
	return &registry{t: t, running: map[string]string{}, last: map[string]int64{}}
}

func (r *registry) start(owner, shard string, fence int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if o, ok := r.running[shard]; ok {
		r.t.Errorf("shard %s started by %s (fence %d) while %s still runs it", shard, owner, fence, o)
	}
	if fence <= r.last[shard] {
		r.t.Errorf("shard %s started by %s with fence %d, not above the earlier %d", shard, owner, fence, r.last[shard])
	}
	r.running[shard] = owner
	r.last[shard] = max(r.last[shard], fence)
}

func (r *registry) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
}

func (r *registry) stop(owner, shard string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[shard] == owner {
		delete(r.running, shard)
	}
}

func (r *registry) runningBy(owner string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.running {
		if o == owner {
			n++
		}
	}
	return n
}

func (r *registry) fence(shard string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[shard]
}

// consumerOpts shape how a test consumer follows its Manager.
type consumerOpts struct {
	stopDelay time.Duration // how long a worker takes to stop
	noDone    bool          // never call Done (an uncooperative consumer)
}

// instance is one aggregator instance: a Manager and a consumer that runs a
// pretend worker per leased shard, driven only by Changes.
type instance struct {
	m      *Manager
	cancel context.CancelFunc
	wg     sync.WaitGroup
	runErr error
}

type group struct {
	t      *testing.T
	client func() redis.UniversalClient
	ns     string
	reg    *registry
	shards atomic.Pointer[[]string]
	ins    []*instance
}

func newGroup(t *testing.T, client func() redis.UniversalClient, nshards int) *group {
	g := &group{t: t, client: client, ns: strings.ReplaceAll(t.Name(), "/", "_"), reg: newRegistry(t)}
	g.setShards(nshards)
	t.Cleanup(func() {
		g.reg.close()
		for _, in := range g.ins {
			in.cancel()
		}
		for _, in := range g.ins {
			in.kill()
		}
	})
	return g
}

func (g *group) setShards(n int) {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("s%02d", i)
	}
	g.shards.Store(&s)
}

func (g *group) list(ctx context.Context) ([]string, error) { return *g.shards.Load(), nil }

func (g *group) start(owner string, cfg Config, co consumerOpts) *instance {
	g.t.Helper()
	return g.startWith(g.client(), owner, cfg, co)
}

// startWith starts an instance that talks to Redis through rdb.
func (g *group) startWith(rdb redis.UniversalClient, owner string, cfg Config, co consumerOpts) *instance {
	g.t.Helper()
	if cfg.TTL == 0 {
		cfg.TTL = testTTL
	}
	cfg.Owner, cfg.Namespace = owner, g.ns
	m, err := New(rdb, cfg)
	if err != nil {
		g.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{m: m, cancel: cancel}
	in.wg.Add(2)
	go func() {
		defer in.wg.Done()
		in.runErr = m.Run(ctx, g.list)
	}()
	go func() {
		defer in.wg.Done()
		g.consume(ctx, m, co)
	}()
	g.ins = append(g.ins, in)
	return in
}

// consume follows m like an aggregator does: it starts a worker for each new
// lease and stops the worker of each lease that disappears, then calls Done.
func (g *group) consume(ctx context.Context, m *Manager, co consumerOpts) {
	workers := map[string]int64{}
	stop := func(sh string, f int64) {
		if ctx.Err() == nil {
			time.Sleep(co.stopDelay)
		}
		g.reg.stop(m.Owner(), sh)
		delete(workers, sh)
		if !co.noDone {
			m.Done(sh, f)
		}
	}
	for {
		select {
		case <-ctx.Done():
			for sh, f := range workers {
				stop(sh, f)
			}
			return
		case <-m.Changes():
		}
		cur := m.Leases()
		for sh, f := range workers {
			if cf, ok := cur[sh]; !ok || cf != f {
				stop(sh, f)
			}
		}
		for sh, f := range cur {
			if _, ok := workers[sh]; !ok {
				g.reg.start(m.Owner(), sh, f)
				workers[sh] = f
			}
		}
	}
}

// kill stops the instance without a release, as a crash would.
func (in *instance) kill() {
	in.cancel()
	in.wg.Wait()
}

// waitSplit polls until the instances hold exactly want[i] leases each and
// together every shard, and no worker runs for a shard the Leases do not
// show.
func (g *group) waitSplit(ins []*instance, want ...int) {
	g.t.Helper()
	deadline := time.Now().Add(converge)
	for {
		got := make([]int, len(ins))
		all := map[string]bool{}
		for i, in := range ins {
			l := in.m.Leases()
			got[i] = len(l)
			for sh := range l {
				all[sh] = true
			}
		}
		steady := slices.Equal(got, want) && len(all) == len(*g.shards.Load())
		for i, in := range ins {
			steady = steady && g.reg.runningBy(in.m.Owner()) == want[i]
		}
		if steady {
			for _, sh := range *g.shards.Load() {
				if !all[sh] {
					g.t.Fatalf("shard %s held by nobody while the split is %v", sh, got)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("split did not converge to %v within %v: leases %v over %d shards", want, converge, got, len(all))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond until it holds, failing the test after converge.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(converge)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, converge)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pauseHook stalls every command of a client while paused, as a process
// frozen by GC or a hung connection would. It ignores ctx, as go-redis does
// for socket I/O unless ContextTimeoutEnabled.
type pauseHook struct {
	mu   sync.Mutex
	gate chan struct{} // nil or closed: open
}

func (h *pauseHook) pause() {
	h.mu.Lock()
	h.gate = make(chan struct{})
	h.mu.Unlock()
}

func (h *pauseHook) resume() {
	h.mu.Lock()
	if h.gate != nil {
		close(h.gate)
		h.gate = nil
	}
	h.mu.Unlock()
}

func (h *pauseHook) wait(ctx context.Context) error {
	h.mu.Lock()
	g := h.gate
	h.mu.Unlock()
	if g != nil {
		<-g
	}
	return nil
}

func (h *pauseHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *pauseHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := h.wait(ctx); err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (h *pauseHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if err := h.wait(ctx); err != nil {
			return err
		}
		return next(ctx, cmds)
	}
}

// syncOffset is a clock that runs with time.Now plus an offset a test moves.
type syncOffset struct{ off atomic.Int64 }

func (s *syncOffset) now() time.Time      { return time.Now().Add(time.Duration(s.off.Load())) }
func (s *syncOffset) add(d time.Duration) { s.off.Add(int64(d)) }
