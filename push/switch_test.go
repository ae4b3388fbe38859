package push

import (
	"context"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
)

// nsStores is the switchable namespace pointer a server gives the hub.
type nsStores struct {
	cur atomic.Pointer[redisagg.Store]
}

func (n *nsStores) Snapshot(ctx context.Context, q redisagg.SeriesQuery) (int64, redisagg.Result, error) {
	return n.cur.Load().Snapshot(ctx, q)
}
func (n *nsStores) DeltaLogKey(site, m string) string  { return n.cur.Load().DeltaLogKey(site, m) }
func (n *nsStores) DeltaChannel(site, m string) string { return n.cur.Load().DeltaChannel(site, m) }

// applyTo applies one commit of n pageviews per path at ts into st.
func applyTo(t *testing.T, st *redisagg.Store, cat *metric.Catalog, seq int, ts, n int64, paths ...string) {
	t.Helper()
	u := metric.NewUpdate()
	for _, step := range cat.Steps {
		b := step.Bucket(ts)
		for _, p := range paths {
			u.Counts[metric.CountKey{Site: "demo", Metric: "pageviews", Step: step.Name, Bucket: b}] += n
			u.Counts[metric.CountKey{Site: "demo", Metric: "pageviews", Step: step.Name, Bucket: b, Dim: "path", Value: p}] += n
		}
	}
	s := strconv.Itoa(seq)
	c := &metric.Commit{Shard: "shard-1", First: s, Last: s, Update: u, Pos: metric.Position{Seq: s, DedupFrom: s}}
	if err := st.Apply(context.Background(), c); err != nil {
		t.Fatalf("apply %s: %v", s, err)
	}
}

// TestSwitch moves a hub with live subscriptions from namespace v1 to v2
// (built meanwhile without deltas, as a replay builds): every subscription
// gets a reset snapshot of v2, then v2's deltas with no gap, and nothing
// more of v1.
func TestSwitch(t *testing.T) {
	e := newEnv(t)
	v1 := redisagg.New(e.rdb, e.cat, redisagg.Config{Namespace: "v1"})
	built := redisagg.New(e.rdb, e.cat, redisagg.Config{Namespace: "v2", NoDeltas: true})
	v2 := redisagg.New(e.rdb, e.cat, redisagg.Config{Namespace: "v2"})
	ns := &nsStores{}
	ns.cur.Store(v1)
	h := New(ns, NewRedisSource(e.srv.Client(t), ns), Config{Catalog: e.cat})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	ts := httptest.NewServer(h)
	t.Cleanup(func() { cancel(); <-done; ts.Close() })
	for {
		h.mu.Lock()
		r := h.running
		h.mu.Unlock()
		if r {
			break
		}
		time.Sleep(time.Millisecond)
	}

	now := time.Now().UnixMilli()
	for i := 1; i <= 5; i++ {
		applyTo(t, v1, e.cat, i, now, 1, "/a")
	}
	c := newClient(t, ts)
	c.subscribe("total", "10s", "", nil)
	c.subscribe("paths", "1m", "path", nil)
	c.until(0, "total", "paths")
	for i := 6; i <= 8; i++ {
		applyTo(t, v1, e.cat, i, now, 1, "/a", "/b")
	}
	c.until(8, "total", "paths") // v1's log holds 8 entries
	for i := 1; i <= 20; i++ {
		applyTo(t, built, e.cat, i, now, 2, "/a", "/c")
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
		if v := c.subs[id]; v.seq != 0 {
			t.Fatalf("%s: reset snapshot at seq %d, want v2's log head 0", id, v.seq)
		}
	}
	// Live in v2 from where the build ended; v1 no longer reaches clients.
	for i := 21; i <= 24; i++ {
		applyTo(t, v2, e.cat, i, now, 1, "/c", "/d")
	}
	applyTo(t, v1, e.cat, 9, now, 100, "/zzz")
	c.until(4, "total", "paths")
	from := now - 15*60_000
	wantOf := func(step, by string) map[string]int64 {
		_, r, err := v2.Snapshot(ctx, redisagg.SeriesQuery{Site: "demo", Metric: "pageviews", Step: step, From: from, To: now, GroupBy: by, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, s := range r.Series {
			for _, p := range s.Points {
				if p[1] != 0 {
					lb := `{}`
					if v, ok := s.Labels["path"]; ok {
						lb = `{"path":"` + v + `"}`
					}
					out[lb+"@"+strconv.FormatInt(p[0], 10)] = p[1]
				}
			}
		}
		return out
	}
	checkState(t, "total", c.subs["total"].state, wantOf("10s", ""))
	checkState(t, "paths", c.subs["paths"].state, wantOf("1m", "path"))
}
