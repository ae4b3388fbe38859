package redisagg

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/push"
	"github.com/pulsehq/pulse/push/sourcetest"
)

var _ SourceStore = (*Store)(nil)

// TestSource runs push's source conformance suite against a real
// redis-server, writing through the store as the aggregator does.
func TestSource(t *testing.T) {
	srv := redistest.Start(t)
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	var ns atomic.Int64
	sourcetest.Run(t, func(t *testing.T) sourcetest.Harness {
		rdb := srv.Client(t)
		st := New(rdb, cat, Config{Namespace: "t" + strconv.FormatInt(ns.Add(1), 10)})
		var seq int
		return sourcetest.Harness{
			Source: NewSource(srv.Client(t), st),
			Publish: func(t *testing.T, site, m string, pts []push.DeltaPoint) {
				t.Helper()
				seq++
				s := strconv.Itoa(seq)
				u := metric.NewUpdate()
				for _, p := range pts {
					u.Counts[metric.CountKey{Site: site, Metric: m, Step: p.Step, Bucket: p.T, Dim: p.Label.Dim, Value: p.Label.Value}] += p.Add
				}
				c := &metric.Commit{Shard: "shard-1", First: s, Last: s, Update: u, Pos: metric.Position{Seq: s, DedupFrom: s}}
				if err := st.Apply(context.Background(), c); err != nil {
					t.Fatalf("apply %s: %v", s, err)
				}
			},
			Trim: func(t *testing.T, site, m string, keep int) {
				if err := rdb.XTrimMaxLen(context.Background(), st.DeltaLogKey(site, m), int64(keep)).Err(); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}

// TestSourceRedis covers what only Redis does: entries that do not decode,
// and pub/sub connections that drop.
func TestSourceRedis(t *testing.T) {
	srv := redistest.Start(t)
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	rdb := srv.Client(t)
	st := New(rdb, cat, Config{})
	src := NewSource(srv.Client(t), st)
	ctx := context.Background()
	next := func(t *testing.T, l push.Listener) push.Notice {
		t.Helper()
		select {
		case n := <-l.Notices():
			return n
		case <-time.After(10 * time.Second):
			t.Fatal("no notice within 10s")
		}
		return push.Notice{}
	}

	t.Run("undecodable log entry", func(t *testing.T) {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: st.DeltaLogKey("bad", "pageviews"), ID: "1-0", Values: []string{"d", "nope"}}).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := src.Range(ctx, "bad", "pageviews", 1, 10); !errors.Is(err, push.ErrBadDelta) {
			t.Fatalf("Range = %v, want an error wrapping push.ErrBadDelta", err)
		}
	})

	l, err := src.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Subscribe(ctx, "demo", "pageviews"); err != nil {
		t.Fatal(err)
	}
	if n := next(t, l); !n.Joined {
		t.Fatalf("got %+v, want the confirmation", n)
	}

	t.Run("undecodable message dropped", func(t *testing.T) {
		ch := st.DeltaChannel("demo", "pageviews")
		if err := rdb.Publish(ctx, ch, "nope").Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.Publish(ctx, ch, `{"n":7,"metric":"pageviews","points":[]}`).Err(); err != nil {
			t.Fatal(err)
		}
		if n := next(t, l); n.Joined || n.Delta.N != 7 {
			t.Fatalf("got %+v, want entry 7 after the undecodable message", n)
		}
	})

	t.Run("rejoined after a reconnect", func(t *testing.T) {
		if err := rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
		if n := next(t, l); !n.Joined || n.Site != "demo" || n.Metric != "pageviews" {
			t.Fatalf("got %+v, want the confirmation again", n)
		}
	})
}
