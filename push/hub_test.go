package push

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
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
	apply := func(i int) {
		e.apply(now-int64(i%3)*10_000, int64(i%7+1), paths(8)[i%8], paths(8)[(i+3)%8])
	}
	var wg sync.WaitGroup
	wg.Go(func() { // during the subscribe
		for i := range 100 {
			apply(i)
		}
	})
	wg.Wait()
	c.until(e.head(), "total", "bypath", "minute")
	for i := 100; i < 200; i++ { // after it: these can only come as deltas
		apply(i)
	}
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
		e.src.Trim("demo", "pageviews", 1)
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

// lossy is a Source whose listeners lose the entries drop names, as a
// pub/sub connection loses messages.
type lossy struct {
	*MemorySource
	mu   sync.Mutex
	drop map[int64]bool
}

func (l *lossy) lose(n int64) {
	l.mu.Lock()
	l.drop[n] = true
	l.mu.Unlock()
}

func (l *lossy) Listen(ctx context.Context) (Listener, error) {
	in, err := l.MemorySource.Listen(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan Notice)
	go func() { // ends when Close closes in's notices
		defer close(out)
		for n := range in.Notices() {
			l.mu.Lock()
			lost := !n.Joined && l.drop[n.Delta.N]
			l.mu.Unlock()
			if !lost {
				out <- n
			}
		}
	}()
	return lossyListener{Listener: in, out: out}, nil
}

type lossyListener struct {
	Listener
	out chan Notice
}

func (l lossyListener) Notices() <-chan Notice { return l.out }

// Close drains what the hub no longer reads, so the forwarder ends.
func (l lossyListener) Close() error {
	go func() {
		for range l.out {
		}
	}()
	return l.Listener.Close()
}

// TestGap: entries missing from the live notices are caught up from the
// log; when the log lacks them too, subscribers get a reset snapshot.
func TestGap(t *testing.T) {
	e := newEnv(t)
	src := &lossy{MemorySource: e.src, drop: map[int64]bool{}}
	_, ts := serveHub(t, New(src, Config{Catalog: e.cat}), loopback)
	now := time.Now().UnixMilli()
	from := now - 15*time.Minute.Milliseconds()
	e.apply(now, 1, "/a")
	c := newClient(t, ts)
	c.subscribe("s", "10s", "", nil)
	c.until(e.head(), "s")

	t.Run("caught up", func(t *testing.T) {
		src.lose(e.head() + 1)
		e.apply(now, 2, "/a") // logged, never notified
		e.apply(now, 3, "/a")
		c.until(e.head(), "s")
		if v := c.subs["s"]; v.resets != 0 {
			t.Fatalf("%d resets, want the gap caught up from the log", v.resets)
		}
		checkState(t, "caught up", c.subs["s"].state, e.want("10s", "", from, now))
	})
	t.Run("reset", func(t *testing.T) {
		src.lose(e.head() + 1)
		e.apply(now, 5, "/a")
		e.src.Trim("demo", "pageviews", 0) // and forgotten by the log
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
	seen := map[string]bool{} // step/bucket/uid
	visit := func(uids ...string) {
		var pts []DeltaPoint
		for _, st := range e.cat.Steps {
			p := DeltaPoint{Step: st.Name, T: st.Bucket(now)}
			for _, id := range uids {
				k := fmt.Sprint(st.Name, p.T, id)
				if !seen[k] {
					seen[k] = true
					p.Add++
				}
			}
			if p.Add > 0 {
				pts = append(pts, p)
			}
		}
		if _, err := e.src.Publish("demo", "visitors", pts); err != nil {
			t.Fatal(err)
		}
	}
	visit("u1", "u2")
	c := newClient(t, ts)
	c.subscribeMetric("v", "visitors", "1m", "", nil)
	for i := range 20 {
		visit(fmt.Sprintf("u%d", i%7), fmt.Sprintf("w%d", i))
	}
	c.until(e.headOf("visitors"), "v")
	checkState(t, "visitors", c.subs["v"].state, e.wantMetric("visitors", "1m", "", now-15*time.Minute.Milliseconds(), now))
}
