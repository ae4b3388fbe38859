package aggregator

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/stream"
)

// eventually polls cond every poll until it holds, and reports false when
// it still does not after within. Tests against a real redis-server poll in
// real time (network I/O is not durably blocking, which keeps them out of a
// synctest bubble); inside a bubble every poll lets the fake clock advance
// once the aggregator is idle, so waiting costs no real time.
func eventually(within, poll time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(poll)
	}
	return true
}

// waitApplied runs until every shard's stored position reaches its last
// record, failing after a generous deadline instead of hanging.
func waitApplied(t *testing.T, pos func(shard string) string, want map[string]string) {
	t.Helper()
	reached := func() bool {
		for sh, seq := range want {
			if pos(sh) != seq {
				return false
			}
		}
		return true
	}
	if !eventually(60*time.Second, 10*time.Millisecond, reached) {
		got := map[string]string{}
		for sh := range want {
			got[sh] = pos(sh)
		}
		t.Fatalf("positions %v, want %v", got, want)
	}
}

func compareUpdate(t *testing.T, want *metric.Update, counts, samples map[metric.CountKey]int64, uniques map[metric.UniqueKey]map[string]struct{}) {
	t.Helper()
	if !maps.Equal(samples, want.Samples) {
		t.Errorf("avg samples differ: %d keys, want %d", len(samples), len(want.Samples))
	}
	if !maps.Equal(counts, want.Counts) {
		n := 0
		for k, v := range want.Counts {
			if counts[k] != v && n < 10 {
				t.Errorf("%+v = %d, want %d", k, counts[k], v)
				n++
			}
		}
		for k, v := range counts {
			if _, ok := want.Counts[k]; !ok && n < 10 {
				t.Errorf("%+v = %d, want none", k, v)
				n++
			}
		}
		t.Fatalf("%d counters, want %d", len(counts), len(want.Counts))
	}
	if !maps.EqualFunc(uniques, want.Uniques, func(a, b map[string]struct{}) bool { return maps.Equal(a, b) }) {
		t.Fatalf("uniques differ: %d keys, want %d", len(uniques), len(want.Uniques))
	}
}

// TestExactlyOnceUnderFaults runs the aggregator over a stream with retries
// and late events while reads fail, applies fail before and after landing,
// and the aggregator itself is cancelled and replaced at random moments;
// the store must end up with exactly the counts of the first sightings.
// It runs in a synctest bubble: the store and stream are in memory, so
// backoffs, polls and replacements run on the fake clock.
func TestExactlyOnceUnderFaults(t *testing.T) {
	cat := testCatalog(t)
	for seed := range uint64(3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := time.Now().UnixMilli()
				w := makeWorkload(seed, 2000, base)
				src := newMemSource(seed, stream.Shard{ID: "a"}, stream.Shard{ID: "b"})
				want := map[string]string{}
				for i := range w.events {
					sh := []string{"a", "b"}[shardOf(&w.events[i], 2)]
					want[sh] = src.put(sh, mustMarshal(t, &w.events[i]))
				}
				src.put("a", []byte("not an event")) // undecodable: counted and skipped
				want["a"] = fmt.Sprint(len(src.records["a"]))
				src.failP = 0.05
				st := newMemStore(seed)
				st.failP, st.lostP = 0.1, 0.1

				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var wg sync.WaitGroup
				done := make(chan struct{})
				runs := 0
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						runs++
						runCtx, stop := context.WithCancel(ctx)
						a, err := New(src, st, Config{Catalog: cat, MaxBatch: 100, MaxCommit: 100, DiscoverEvery: 20 * time.Millisecond})
						if err != nil {
							t.Error(err)
							stop()
							return
						}
						a.backoffMin = time.Millisecond
						go func() {
							// Replace the aggregator now and then, mid-run: after
							// 1 to 20ms of the fake clock, which moves only while
							// the aggregator waits (a backoff, an empty read).
							select {
							case <-time.After(time.Duration(1+i*37%20) * time.Millisecond):
							case <-done:
							}
							stop()
						}()
						if err := a.Run(runCtx); err != nil {
							t.Error(err)
						}
						stop()
						select {
						case <-done:
							return
						default:
						}
					}
				}()
				waitApplied(t, func(sh string) string { return mustPos(st, sh) }, want)
				close(done)
				wg.Wait()

				st.mu.Lock()
				defer st.mu.Unlock()
				compareUpdate(t, truth(cat, w.unique), st.counts, st.samples, st.uniques)
				if st.overlaps > 0 {
					t.Errorf("%d overlapping commits: a restart did not resume from the stored position", st.overlaps)
				}
				if st.lost == 0 || st.failed == 0 || runs < 2 { // at least one replacement mid-run
					t.Errorf("%d lost replies, %d failed applies, %d aggregator runs: faults not exercised", st.lost, st.failed, runs)
				}
			})
		})
	}
}

func mustPos(st *memStore, shard string) string {
	p, _ := st.Position(context.Background(), shard)
	return p.Seq
}

func mustMarshal(t testing.TB, e *event.Event) []byte {
	b, err := event.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReshard checks that children of a closed shard start only after the
// parent was read to its end, so one key's events stay in order.
func TestReshard(t *testing.T) { synctest.Test(t, testReshard) }

func testReshard(t *testing.T) {
	cat := testCatalog(t)
	base := time.Now().UnixMilli()
	src := newMemSource(1,
		stream.Shard{ID: "p", Closed: true},
		stream.Shard{ID: "c1", Parents: []string{"p"}},
		stream.Shard{ID: "c2", Parents: []string{"p", "gone"}})
	e := event.Event{ID: "x", Site: "s", Type: "pageview", TS: base, RT: base}
	for range 50 {
		src.put("p", mustMarshal(t, &e)) // all duplicates of one event
	}
	src.put("c1", mustMarshal(t, &e)) // a retry that landed after the reshard
	e.ID = "y"
	src.put("c2", mustMarshal(t, &e))
	st := newMemStore(1)
	reg := prometheus.NewRegistry()
	a, err := New(src, st, Config{Catalog: cat, MaxBatch: 7, DiscoverEvery: time.Hour, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	waitApplied(t, func(sh string) string { return mustPos(st, sh) }, map[string]string{"p": "50", "c1": "1", "c2": "1"})
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	k := metric.CountKey{Site: "s", Metric: "pageviews", Step: "1m", Bucket: metric.DefaultSteps()[1].Bucket(base)}
	// The children inherit the parent's final dedup state, so the retry of
	// x that landed in c1 is a duplicate: x and y.
	if got := st.counts[k]; got != 2 {
		t.Errorf("count %d, want 2", got)
	}
	lastParent, firstChild := -1, len(st.order)
	for i, sh := range st.order {
		if sh == "p" {
			lastParent = i
		} else {
			firstChild = min(firstChild, i)
		}
	}
	if firstChild < lastParent {
		t.Errorf("commit order %v: a child was applied before its parent ended", st.order)
	}
	if got := gathered(t, reg, "pulse_aggregator_events_total", "duplicate"); got != 50 {
		t.Errorf("duplicates counted %v, want 50", got)
	}
	if lag := a.Lag(); len(lag) != 3 {
		t.Errorf("lag %v, want 3 shards", lag)
	}
}

// TestReshardTwice resharding twice within one dedup window: a retry that
// lands in a grandchild is recognized against its original in the
// grandparent, not only in the parent.
func TestReshardTwice(t *testing.T) { synctest.Test(t, testReshardTwice) }

func testReshardTwice(t *testing.T) {
	cat := testCatalog(t)
	base := time.Now().UnixMilli()
	src := newMemSource(1,
		stream.Shard{ID: "g", Closed: true},
		stream.Shard{ID: "p", Parents: []string{"g"}, Closed: true},
		stream.Shard{ID: "c", Parents: []string{"p"}})
	ev := func(id string, rt int64) []byte {
		return mustMarshal(t, &event.Event{ID: id, Site: "s", Type: "pageview", TS: base, RT: rt})
	}
	src.put("g", ev("x", base))
	src.put("p", ev("y", base+1000))
	src.put("c", ev("x", base+2000)) // a retry of x, seen only in g
	src.put("c", ev("y", base+2500)) // a retry of y, seen in p
	src.put("c", ev("z", base+3000))
	st := newMemStore(1)
	reg := prometheus.NewRegistry()
	a, err := New(src, st, Config{Catalog: cat, DiscoverEvery: time.Hour, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	waitApplied(t, func(sh string) string { return mustPos(st, sh) }, map[string]string{"g": "1", "p": "1", "c": "3"})
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	k := metric.CountKey{Site: "s", Metric: "pageviews", Step: "1m", Bucket: metric.DefaultSteps()[1].Bucket(base)}
	if got := st.counts[k]; got != 3 {
		t.Errorf("count %d, want 3 (x, y, z)", got)
	}
	if got := gathered(t, reg, "pulse_aggregator_events_total", "duplicate"); got != 2 {
		t.Errorf("duplicates counted %v, want 2", got)
	}
}

// gathered returns the value of the counter or gauge name whose one label
// has value label.
func gathered(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}
