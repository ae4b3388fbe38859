package aggregator

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/lease"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/stream"
)

// member is one aggregator instance of a group: its own Aggregator and
// lease.Manager, as one `pulse serve --roles aggregate` process has.
type member struct {
	owner  string
	mgr    *lease.Manager
	agg    *Aggregator
	cancel context.CancelFunc
	done   chan struct{}
}

func startMember(t testing.TB, rdb redis.UniversalClient, src Source, st Store, cat *metric.Catalog, owner string, ttl time.Duration, mod func(*Config)) *member {
	t.Helper()
	cfg := Config{Catalog: cat, MaxBatch: 40, MaxCommit: 90, DiscoverEvery: time.Hour}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(src, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.backoffMin = 5 * time.Millisecond
	m, err := lease.New(rdb, lease.Config{Owner: owner, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mb := &member{owner: owner, mgr: m, agg: a, cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := m.Run(ctx, a.Workable); err != nil {
			t.Errorf("%s: lease Run: %v", owner, err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := a.RunLeased(ctx, m); err != nil {
			t.Errorf("%s: RunLeased: %v", owner, err)
		}
	}()
	go func() { wg.Wait(); close(mb.done) }()
	t.Cleanup(mb.kill)
	return mb
}

// kill stops the instance as a crash does: no Leave, its leases expire.
func (m *member) kill() {
	m.cancel()
	<-m.done
}

// stop is a graceful shutdown: workers stop, then the instance leaves.
func (m *member) stop(t testing.TB) {
	m.kill()
	if err := m.mgr.Leave(context.Background()); err != nil {
		t.Errorf("%s: leave: %v", m.owner, err)
	}
}

// reshard closes every open shard of src and gives each two children, as
// UpdateShardCount doubling the shards does.
func reshard(src *memSource) {
	src.mu.Lock()
	defer src.mu.Unlock()
	var open []string
	for i := range src.shards {
		if !src.shards[i].Closed {
			src.shards[i].Closed = true
			open = append(open, src.shards[i].ID)
		}
	}
	for _, p := range open {
		for c := range 2 {
			src.shards = append(src.shards, stream.Shard{ID: fmt.Sprintf("%s.%d", p, c), Parents: []string{p}})
		}
	}
}

// route puts an event on the open shard its key hashes to: the k-th open
// shard (in creation order) of n, as a hash-range split keeps each key in
// a child of the parent it was in.
func route(src *memSource, e *event.Event, data []byte) (string, string) {
	src.mu.Lock()
	var open []string
	for _, s := range src.shards {
		if !s.Closed {
			open = append(open, s.ID)
		}
	}
	src.mu.Unlock()
	h := fnv.New32a()
	h.Write([]byte(e.PartitionKey()))
	sum := h.Sum32()
	// Children of parent p are p.0 and p.1: pick the parent by the low
	// bits as before the split, then the child by the next bit.
	shard := open[0]
	if strings.Contains(open[0], ".") {
		p := sum % uint32(len(open)/2)
		shard = fmt.Sprintf("g%d.%d", p, (sum/uint32(len(open)/2))%2)
	} else {
		shard = fmt.Sprintf("g%d", sum%uint32(len(open)))
	}
	return shard, src.put(shard, data)
}

// TestGroup runs aggregator instances as a group over a real redis-server:
// instances start together, one is killed (its leases expire) or stops
// gracefully, one joins, and the stream is resharded 4 -> 8 while they
// run, with client retries straddling the reshard. The aggregates must
// equal the ground truth exactly, and every shard must end applied.
func TestGroup(t *testing.T) {
	for _, tc := range []struct {
		name     string
		start    int
		kill     bool // kill one instance (else stop one gracefully)
		join     bool // a new instance joins after the reshard
		events   int
		leaseTTL time.Duration
	}{
		{name: "three, one killed, one joins", start: 3, kill: true, join: true, events: 3000, leaseTTL: 500 * time.Millisecond},
		{name: "two, one leaves gracefully", start: 2, kill: false, join: false, events: 2000, leaseTTL: 500 * time.Millisecond},
		{name: "one alone", start: 1, events: 1000, leaseTTL: 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			rdb := srv.Client(t)
			cat := testCatalog(t)
			st := redisagg.New(rdb, cat, redisagg.Config{})
			var shards []stream.Shard
			for i := range 4 {
				shards = append(shards, stream.Shard{ID: fmt.Sprintf("g%d", i)})
			}
			src := newMemSource(uint64(tc.events), shards...)
			w := makeWorkload(uint64(tc.events), tc.events, time.Now().UnixMilli())
			put := func(evs []event.Event) {
				for i := range evs {
					route(src, &evs[i], mustMarshal(t, &evs[i]))
				}
			}
			half := len(w.events) / 2
			put(w.events[:half/2])

			var members []*member
			for i := range tc.start {
				members = append(members, startMember(t, rdb, src, st, cat, fmt.Sprintf("m%d", i), tc.leaseTTL, nil))
			}
			put(w.events[half/2 : half])
			waitFor(t, func() bool { return anyApplied(t, st, "g0", "g1", "g2", "g3") })
			if tc.start > 1 {
				if tc.kill {
					members[0].kill()
				} else {
					members[0].stop(t)
				}
				members = members[1:]
			}
			reshard(src)
			if tc.join {
				members = append(members, startMember(t, rdb, src, st, cat, "m-joined", tc.leaseTTL, nil))
			}
			put(w.events[half:])
			waitAllApplied(t, src, st)
			for _, m := range members {
				m.stop(t)
			}
			compareStored(t, rdb, truth(cat, w.unique))
		})
	}
}

// anyApplied reports whether some shard has applied records.
func anyApplied(t *testing.T, st *redisagg.Store, shards ...string) bool {
	for _, sh := range shards {
		p, err := st.Position(context.Background(), sh)
		if err != nil {
			t.Fatal(err)
		}
		if p.Seq != "" {
			return true
		}
	}
	return false
}

// waitAllApplied waits until every shard of src is applied to its last
// record and every closed shard is recorded as ended.
func waitAllApplied(t *testing.T, src *memSource, st *redisagg.Store) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, func() bool {
		src.mu.Lock()
		shards := append([]stream.Shard(nil), src.shards...)
		tips := map[string]string{}
		for _, s := range shards {
			if n := len(src.records[s.ID]); n > 0 {
				tips[s.ID] = strconv.Itoa(n)
			}
		}
		src.mu.Unlock()
		var ids []string
		for _, s := range shards {
			ids = append(ids, s.ID)
			p, err := st.Position(ctx, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if p.Seq != tips[s.ID] {
				return false
			}
		}
		ended, err := st.Ended(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range shards {
			if s.Closed && !ended[s.ID] {
				return false
			}
		}
		return true
	})
}

// compareStored compares every stored counter (on every master of a
// cluster) with the ground truth.
func compareStored(t *testing.T, rdb redis.UniversalClient, want *metric.Update) {
	t.Helper()
	compareHashes(t, rdb, "c", want.Counts)
	compareHashes(t, rdb, "n", want.Samples)
}

// compareHashes compares the hashes of one kind ("c": counts and sums, "n":
// avg samples) with want.
func compareHashes(t *testing.T, rdb redis.UniversalClient, kind string, want map[metric.CountKey]int64) {
	t.Helper()
	got := map[metric.CountKey]int64{}
	read := func(c *redis.Client) {
		for k, v := range storedCounts(t, c, kind) {
			got[k] = v
		}
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		var mu sync.Mutex
		if err := c.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			read(m)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	case *redis.Client:
		read(c)
	}
	n := 0
	for k, v := range want {
		if got[k] != v {
			if n++; n < 10 {
				t.Errorf("%+v = %d, want %d", k, got[k], v)
			}
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			if n++; n < 10 {
				t.Errorf("%+v = %d, want none", k, v)
			}
		}
	}
	if n > 0 {
		t.Fatalf("%d %s counters differ (of %d)", n, kind, len(want))
	}
}

// crashHook makes every command fail once armed and the given number of
// scripts (the apply's site parts, position, pending mark) have run: the
// instance dies at that instant, between two site parts of a commit when
// the count falls there.
type crashHook struct {
	left  atomic.Int64 // scripts still allowed; <0: not armed
	dead  atomic.Bool
	onDie func()
}

func (h *crashHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *crashHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.dead.Load() {
			return errors.New("injected crash")
		}
		return next(ctx, cmds)
	}
}
func (h *crashHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.dead.Load() {
			return errors.New("injected crash")
		}
		if n := cmd.Name(); (n == "evalsha" || n == "eval") && h.left.Load() >= 0 {
			if h.left.Add(-1) < 0 {
				h.dead.Store(true)
				h.onDie()
				return errors.New("injected crash")
			}
		}
		return next(ctx, cmd)
	}
}

// TestClusterCrashBetweenParts kills the aggregator in the middle of
// applies on a Redis Cluster, often between two site parts of a commit
// (each site part is its own atomic script there), and restarts it with a
// different commit size each time, so the restarted worker's commits end
// elsewhere than the partly applied one. It must end a commit exactly at
// the partly applied end (ErrOverlap forever otherwise) and the aggregates
// must equal the ground truth.
func TestClusterCrashBetweenParts(t *testing.T) {
	ctx := context.Background()
	cluster := redistest.StartCluster(t, 3)
	addrs := cluster.Options().Addrs
	cat := testCatalog(t)
	shards := []stream.Shard{{ID: "x0"}, {ID: "x1"}}
	src := newMemSource(9, shards...)
	// Reads as large as asked: commit boundaries follow the commit size
	// alone, so a restart with another size never meets the partly
	// applied end by chance.
	src.full = true
	w := makeWorkload(9, 2500, time.Now().UnixMilli())
	// Many sites, so a commit has many parts in different slots.
	site := func(id string) string {
		h := fnv.New32a()
		h.Write([]byte(id))
		return fmt.Sprintf("site%d", h.Sum32()%9)
	}
	for i := range w.events {
		w.events[i].Site = site(w.events[i].ID)
	}
	for i := range w.unique {
		w.unique[i].Site = site(w.unique[i].ID)
	}
	for i := range w.events {
		src.put(shards[shardOf(&w.events[i], 2)].ID, mustMarshal(t, &w.events[i]))
	}
	check := redisagg.New(cluster, cat, redisagg.Config{})
	done := func() bool {
		for _, s := range shards {
			p, err := check.Position(ctx, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if p.Seq != strconv.Itoa(len(src.records[s.ID])) {
				return false
			}
		}
		return true
	}
	r := rand.New(rand.NewPCG(9, 9))
	partial, runs := 0, 0
	for !done() {
		if runs++; runs > 200 {
			t.Fatalf("not applied after %d runs", runs)
		}
		// A new process: its own client, hook and commit size.
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
		h := &crashHook{}
		h.left.Store(-1)
		c.AddHook(h)
		st := redisagg.New(c, cat, redisagg.Config{})
		size := 20 + r.IntN(200)
		a, err := New(src, st, Config{Catalog: cat, MaxBatch: size, MaxCommit: size, DiscoverEvery: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		a.backoffMin = time.Millisecond
		runCtx, cancel := context.WithCancel(ctx)
		h.onDie = cancel
		if partial < 3 {
			h.left.Store(int64(1 + r.IntN(60)))
		}
		errc := make(chan error, 1)
		go func() { errc <- a.Run(runCtx) }()
		// Until the crash, or the end when no crash is armed (enough
		// partial commits seen: run to the end undisturbed).
		if !eventually(60*time.Second, 10*time.Millisecond, func() bool { return runCtx.Err() != nil || done() }) {
			t.Fatalf("run %d (commit size %d) made no progress to the end in 60s", runs, size)
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		c.Close()
		for _, s := range shards {
			if isPartial(t, cluster, check, s.ID) {
				partial++
			}
		}
	}
	if partial == 0 {
		t.Fatalf("%d runs, no crash left a commit partly applied: the test proves nothing", runs)
	}
	t.Logf("%d runs, %d partly applied commits resumed", runs, partial)
	compareStored(t, cluster, truth(cat, w.unique))
}

// isPartial reports whether shard has a pending commit that some sites hold
// and others do not.
func isPartial(t *testing.T, c *redis.ClusterClient, st *redisagg.Store, shard string) bool {
	ctx := context.Background()
	pend, err := st.Pending(ctx, shard)
	if err != nil {
		t.Fatal(err)
	}
	if pend == "" {
		return false
	}
	at := 0
	for i := range 9 {
		v, err := c.HGet(ctx, fmt.Sprintf("p:v1:{site%d}:ck", i), shard).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		if v == pend {
			at++
		}
	}
	return at > 0
}

// gappySource numbers records 10, 20, 30... as Kinesis leaves gaps between
// sequence numbers, and refuses to read after a number that is no record,
// as kinesis-local does (ResourceNotFoundException). It reads from a
// record inclusive with ReadFrom, as stream/kinesis does.
type gappySource struct{ *memSource }

func (g gappySource) Read(ctx context.Context, shard, after string, limit int) (stream.Batch, error) {
	inner := ""
	if after != "" {
		n, err := strconv.Atoi(after)
		if err != nil || n%10 != 0 {
			return stream.Batch{}, fmt.Errorf("no record %q in shard %s", after, shard)
		}
		inner = strconv.Itoa(n / 10)
	}
	b, err := g.memSource.Read(ctx, shard, inner, limit)
	for i := range b.Records {
		n, _ := strconv.Atoi(b.Records[i].Seq)
		b.Records[i].Seq = strconv.Itoa(n * 10)
	}
	return b, err
}

func (g gappySource) ReadFrom(ctx context.Context, shard, from string, limit int) (stream.Batch, error) {
	n, err := strconv.Atoi(from)
	if err != nil || n%10 != 0 || n < 10 {
		return stream.Batch{}, fmt.Errorf("no record %q in shard %s", from, shard)
	}
	after := ""
	if n > 10 {
		after = strconv.Itoa(n - 10)
	}
	return g.Read(ctx, shard, after, limit)
}

// TestRebuildOnGappySequences restarts the aggregator again and again over
// a stream whose sequence numbers have gaps: every restart rebuilds the
// dedup state from DedupFrom, which must read from that record (ReadFrom)
// rather than after the number before it, which is no record. Client
// retries spread over the stream must still count once.
func TestRebuildOnGappySequences(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	cat := testCatalog(t)
	shards := []stream.Shard{{ID: "k0"}, {ID: "k1"}}
	src := gappySource{newMemSource(5, shards...)}
	w := makeWorkload(5, 2000, time.Now().UnixMilli())
	for i := range w.events {
		src.put(shards[shardOf(&w.events[i], 2)].ID, mustMarshal(t, &w.events[i]))
	}
	st := redisagg.New(rdb, cat, redisagg.Config{})
	done := func() bool {
		for _, s := range shards {
			p, err := st.Position(ctx, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if p.Seq != strconv.Itoa(10*len(src.records[s.ID])) {
				return false
			}
		}
		return true
	}
	restarts := 0
	for !done() {
		a, err := New(src, st, Config{Catalog: cat, MaxBatch: 30, MaxCommit: 30, DiscoverEvery: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		a.backoffMin = time.Millisecond
		runCtx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- a.Run(runCtx) }()
		// Run until a few more commits landed, then stop: the next run
		// resumes and rebuilds.
		target := st.Stats().Commits + 3
		if !eventually(30*time.Second, time.Millisecond, func() bool { return st.Stats().Commits >= target || done() }) {
			t.Fatalf("restart %d made no progress in 30s (dedup rebuild failing?)", restarts)
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		restarts++
	}
	if restarts < 5 {
		t.Fatalf("%d restarts: the rebuild was hardly exercised", restarts)
	}
	compareStored(t, rdb, truth(cat, w.unique))
}

// TestFencedWorkerStops: a newer owner takes a shard (a higher fence in the
// store) while the old owner still believes it holds the lease, as after a
// long pause. The old worker's next apply is refused and it stops, writing
// nothing; once its lease is gone the shard continues at the next owner,
// and the aggregates are exact.
func TestFencedWorkerStops(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	cat := testCatalog(t)
	st := redisagg.New(rdb, cat, redisagg.Config{})
	src := newMemSource(3, stream.Shard{ID: "f0"})
	w := makeWorkload(3, 1200, time.Now().UnixMilli())
	half := len(w.events) / 2
	for i := range w.events[:half] {
		src.put("f0", mustMarshal(t, &w.events[i]))
	}
	reg := prometheus.NewRegistry()
	// A TTL long enough that a loaded machine does not lose the lease on
	// its own (a lease taken again would carry a higher fence than the
	// "newer owner" below).
	old := startMember(t, rdb, src, st, cat, "old", 3*time.Second, func(c *Config) {
		c.Registerer, c.MaxBatch, c.MaxCommit = reg, 20, 20
	})
	waitFor(t, func() bool { return anyApplied(t, st, "f0") })

	// The newer owner's fence, from the lease fence counter as lease
	// hands them out, lands in the shard position.
	f, err := rdb.HIncrBy(ctx, "p:v1:{lease}:fence", "f0", 1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, "p:v1:{f0}:pos", "fence", f).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range w.events[half:] {
		src.put("f0", mustMarshal(t, &w.events[half+i]))
	}
	waitFor(t, func() bool { return gathered(t, reg, "pulse_aggregator_errors_total", "fenced") >= 1 })
	p, err := st.Position(ctx, "f0")
	if err != nil {
		t.Fatal(err)
	}
	if p.Fence != f {
		t.Fatalf("position fence %d after the fenced writer stopped, want the newer owner's %d", p.Fence, f)
	}
	old.kill()
	startMember(t, rdb, src, st, cat, "new", 500*time.Millisecond, nil)
	waitAllApplied(t, src, st)
	if p, _ := st.Position(ctx, "f0"); p.Fence <= f {
		t.Errorf("shard finished with fence %d, want above %d", p.Fence, f)
	}
	compareStored(t, rdb, truth(cat, w.unique))
}
