package push

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pulsehq/pulse/metric"
)

func paths(n int) []string {
	p := make([]string, n)
	for i := range p {
		p[i] = fmt.Sprintf("/p%d", i)
	}
	return p
}

// TestLiveExact: a snapshot plus its deltas reproduce exactly what was
// applied, before, during and after the subscribe, with contiguous seqs.
func TestLiveExact(t *testing.T) {
	e := newEnv(t)
	_, ts := e.hub(Config{})
	now := time.Now().UnixMilli()
	for i := range 20 {
		e.apply(now, int64(i+1), paths(5)[i%5])
	}
	c := newClient(t, ts)
	c.subscribe("total", "10s", "", nil)
	c.subscribe("bypath", "10s", "path", nil)
	c.subscribe("minute", "1m", "path", nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 200 {
			e.apply(now-int64(i%3)*10_000, int64(i%7+1), paths(8)[i%8], paths(8)[(i+3)%8])
		}
	}()
	wg.Wait()
	head := e.head()
	c.until(head, "total", "bypath", "minute")
	from := now - 15*time.Minute.Milliseconds()
	checkState(t, "total", c.subs["total"].state, e.want("10s", "", from, now))
	checkState(t, "bypath", c.subs["bypath"].state, e.want("10s", "path", from, now))
	checkState(t, "minute", c.subs["minute"].state, e.want("1m", "path", from, now))
	for id, v := range c.subs {
		if v.snaps != 1 || v.resets != 0 || v.deltas == 0 {
			t.Errorf("%s: %d snapshots, %d resets, %d deltas; want 1, 0, >0", id, v.snaps, v.resets, v.deltas)
		}
	}
}

// TestTwoHubs: two push nodes on one Redis serve the same subscription.
func TestTwoHubs(t *testing.T) {
	e := newEnv(t)
	_, ts1 := e.hub(Config{})
	_, ts2 := e.hub(Config{})
	now := time.Now().UnixMilli()
	e.apply(now, 2, "/a")
	c1, c2 := newClient(t, ts1), newClient(t, ts2)
	c1.subscribe("s", "10s", "path", nil)
	c2.subscribe("s", "10s", "path", nil)
	for i := range 100 {
		e.apply(now, 1, paths(4)[i%4])
	}
	head := e.head()
	c1.until(head, "s")
	c2.until(head, "s")
	want := e.want("10s", "path", now-15*time.Minute.Milliseconds(), now)
	checkState(t, "hub1", c1.subs["s"].state, want)
	checkState(t, "hub2", c2.subs["s"].state, want)
}

// TestResume: since=S replays S+1..head as deltas while the log holds them,
// and answers a reset snapshot when it does not.
func TestResume(t *testing.T) {
	e := newEnv(t)
	_, ts := e.hub(Config{})
	now := time.Now().UnixMilli()
	from := now - 15*time.Minute.Milliseconds()
	e.apply(now, 1, "/a")
	c := newClient(t, ts)
	c.subscribe("s", "10s", "path", nil)
	c.until(e.head(), "s")
	v := c.subs["s"]
	_ = c.ws.CloseNow()

	t.Run("replay", func(t *testing.T) {
		for i := range 30 {
			e.apply(now, 1, paths(3)[i%3])
		}
		c2 := newClient(t, ts)
		c2.subs["s"] = v // keeps the state of the first connection
		since := v.seq
		c2.subscribe("s", "10s", "path", &since)
		head := e.head()
		c2.until(head, "s")
		if v.snaps != 1 {
			t.Fatalf("resume sent a snapshot (%d snapshots)", v.snaps)
		}
		checkState(t, "resumed", v.state, e.want("10s", "path", from, now))

		t.Run("up to date", func(t *testing.T) {
			c3 := newClient(t, ts)
			c3.subs["s"] = v
			since := v.seq
			c3.subscribe("s", "10s", "path", &since)
			e.apply(now, 5, "/z")
			c3.until(e.head(), "s")
			if v.snaps != 1 {
				t.Fatalf("resume sent a snapshot (%d snapshots)", v.snaps)
			}
			checkState(t, "up to date", v.state, e.want("10s", "path", from, now))
		})
	})

	t.Run("reset", func(t *testing.T) {
		since := v.seq
		for range 5 {
			e.apply(now, 1, "/b")
		}
		// The log forgets everything but the newest entry.
		if err := e.rdb.XTrimMaxLen(context.Background(), e.store.DeltaLogKey("demo", "pageviews"), 1).Err(); err != nil {
			t.Fatal(err)
		}
		c4 := newClient(t, ts)
		c4.subscribe("s", "10s", "path", &since)
		c4.until(e.head(), "s")
		w := c4.subs["s"]
		if w.snaps != 1 || w.resets != 1 {
			t.Fatalf("got %d snapshots, %d resets; want a reset snapshot", w.snaps, w.resets)
		}
		checkState(t, "reset", w.state, e.want("10s", "path", from, now))
	})
}

// TestGap: entries missing from pub/sub are caught up from the log; when the
// log lacks them too, subscribers get a reset snapshot.
func TestGap(t *testing.T) {
	e := newEnv(t)
	_, ts := e.hub(Config{})
	now := time.Now().UnixMilli()
	from := now - 15*time.Minute.Milliseconds()
	e.apply(now, 1, "/a")
	c := newClient(t, ts)
	c.subscribe("s", "10s", "", nil)
	c.until(e.head(), "s")
	ctx := context.Background()
	seqKey := e.store.DeltaLogKey("demo", "pageviews")
	seqKey = seqKey[:len(seqKey)-len("dlog:pageviews")] + "dseq:pageviews"

	t.Run("caught up", func(t *testing.T) {
		// An entry in the log that was never published: a zero-change point
		// of an old bucket, harmless to the totals.
		n, err := e.rdb.Incr(ctx, seqKey).Result()
		if err != nil {
			t.Fatal(err)
		}
		old := metric.DefaultSteps()[0].Bucket(now - 60_000)
		d := fmt.Sprintf(`{"n":%d,"metric":"pageviews","points":[{"step":"10s","t":%d,"labels":{},"add":0,"value":0}]}`, n, old)
		if err := e.rdb.Do(ctx, "XADD", e.store.DeltaLogKey("demo", "pageviews"), fmt.Sprintf("%d-0", n), "d", d).Err(); err != nil {
			t.Fatal(err)
		}
		e.apply(now, 3, "/a")
		c.until(e.head(), "s")
		if v := c.subs["s"]; v.resets != 0 {
			t.Fatalf("%d resets, want the gap caught up from the log", v.resets)
		}
		checkState(t, "caught up", c.subs["s"].state, e.want("10s", "", from, now))
	})
	t.Run("reset", func(t *testing.T) {
		if err := e.rdb.Incr(ctx, seqKey).Err(); err != nil { // n taken, never logged
			t.Fatal(err)
		}
		e.apply(now, 4, "/a")
		c.until(e.head(), "s")
		if v := c.subs["s"]; v.resets != 1 {
			t.Fatalf("%d resets, want 1", v.resets)
		}
		checkState(t, "reset", c.subs["s"].state, e.want("10s", "", from, now))
	})
}

// TestUnique: a distinct-count metric pushes the change of the count and
// the new count.
func TestUnique(t *testing.T) {
	e := newEnv(t)
	_, ts := e.hub(Config{})
	now := time.Now().UnixMilli()
	visit := func(uids ...string) {
		u := metric.NewUpdate()
		for _, st := range e.cat.Steps {
			for _, id := range uids {
				u.AddUnique(metric.UniqueKey{Site: "demo", Metric: "visitors", Step: st.Name, Bucket: st.Bucket(now)}, id)
			}
		}
		e.mu.Lock()
		e.seq++
		s := fmt.Sprint(e.seq)
		e.mu.Unlock()
		if err := e.store.Apply(context.Background(), &metric.Commit{Shard: "shard-1", First: s, Last: s, Update: u, Pos: metric.Position{Seq: s}}); err != nil {
			t.Fatal(err)
		}
	}
	visit("u1", "u2")
	c := newClient(t, ts)
	c.subscribeMetric("v", "visitors", "1m", "", nil)
	for i := range 20 {
		visit(fmt.Sprintf("u%d", i%7), fmt.Sprintf("w%d", i))
	}
	head, err := NewRedisSource(e.rdb, e.store).Last(context.Background(), "demo", "visitors")
	if err != nil {
		t.Fatal(err)
	}
	c.until(head, "v")
	checkState(t, "visitors", c.subs["v"].state, e.wantMetric("visitors", "1m", "", now-15*time.Minute.Milliseconds(), now))
}
