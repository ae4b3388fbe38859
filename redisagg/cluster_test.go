package redisagg

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/redistest"
)

// TestCluster applies a commit spanning sites in different slots: each site
// part is one script in its slot, and redelivery skips them all.
func TestCluster(t *testing.T) {
	ctx := context.Background()
	c := redistest.StartCluster(t, 3)
	cat := catalog(t)
	now := time.Now()
	st := New(c, cat, Config{Now: func() time.Time { return now }})
	if !st.cluster {
		t.Fatal("store did not detect the cluster client")
	}
	ts := now.UnixMilli()
	sites := []string{"demo", "shop", "blog", "docs", "news"}
	slots := map[int64]bool{}
	a := newAdder(cat)
	for _, s := range sites {
		a.count(s, "pageviews", ts, 2, "path", "/"+s)
		a.unique(s, "visitors", ts, "u1", "u2")
		slot, err := c.ClusterKeySlot(ctx, st.keys.checkpoint(s)).Result()
		if err != nil {
			t.Fatal(err)
		}
		slots[slot] = true
	}
	if len(slots) < 2 {
		t.Fatalf("sites share one slot, the test proves nothing")
	}
	cm := commit("1", "4", 3, a.u)
	for i := 0; i < 2; i++ {
		if err := st.Apply(ctx, cm); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	if s := st.Stats(); s.Parts != int64(len(sites)) || s.Skipped != int64(len(sites)) {
		t.Errorf("stats %+v, want %d parts applied then skipped", s, len(sites))
	}
	for _, s := range sites {
		seq, r, err := st.Snapshot(ctx, SeriesQuery{Site: s, Metric: "pageviews", Step: "1m", From: ts, To: ts, GroupBy: "path"})
		if err != nil || seq != 1 || sum(r, "path", "/"+s) != 2 {
			t.Errorf("%s: seq %d series %+v err %v", s, seq, r, err)
		}
		top, err := st.Top(ctx, TopQuery{Site: s, Metric: "pageviews", Dim: "path", From: ts, To: ts})
		if err != nil || len(top) != 1 || top[0].Count != 2 {
			t.Errorf("%s: top %+v %v", s, top, err)
		}
	}
	pos, err := st.Position(ctx, "shard-000001")
	if err != nil || pos.Seq != "4" || pos.Fence != 3 {
		t.Errorf("position %+v %v", pos, err)
	}
	if err := st.Apply(ctx, commit("5", "6", 2, newAdder(cat).count("new", "events", ts, 1, "type", "x").u)); !errors.Is(err, ErrFenced) {
		t.Errorf("fenced writer: err %v, want ErrFenced", err)
	}
	if n, _ := c.Exists(ctx, st.keys.checkpoint("new")).Result(); n != 0 {
		t.Errorf("fenced writer wrote a site")
	}
}
