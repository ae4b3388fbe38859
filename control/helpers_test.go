package control_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/control"
	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/namespace"
	"github.com/pulsehq/pulse/push"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/stream"
	"github.com/pulsehq/pulse/stream/local"
)

var (
	_ control.Stream       = (*local.Log)(nil)
	_ control.Switcher     = (*push.Hub)(nil)
	_ redisagg.SourceStore = (*control.Runtime)(nil)
)

// env is a node's control plane over a real redis-server and a local
// stream of two shards.
type env struct {
	rdb  *redis.Client
	log  *local.Log
	reg  *prometheus.Registry
	rt   *control.Runtime
	sent int
}

// newEnv starts a Runtime on namespace v1 and runs it until the test ends.
// edit adjusts the config before New; a nil Stream in it makes a
// push-only node.
func newEnv(t *testing.T, edit func(*control.Config)) *env {
	t.Helper()
	l, err := local.Open(filepath.Join(t.TempDir(), "stream"), local.Config{Shards: 2, ReadWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	rdb := redistest.Start(t).Client(t)
	e := &env{rdb: rdb, log: l, reg: prometheus.NewRegistry()}
	cfg := control.Config{
		Redis: rdb, Registry: namespace.NewRedisBackend(rdb), Namespace: "v1",
		Stream: l, Aggregate: true, FollowEvery: 20 * time.Millisecond, Registerer: e.reg,
	}
	if edit != nil {
		edit(&cfg)
	}
	e.rt, err = control.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.rt.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return e
}

// put adds n pageviews of site demo, received now.
func (e *env) put(t *testing.T, n int) {
	t.Helper()
	now := time.Now().UnixMilli()
	var entries []stream.Entry
	for i := range n {
		e.sent++
		ev := event.Event{
			ID: fmt.Sprintf("ev-%08d", e.sent), Site: "demo", Type: "pageview", TS: now - int64(i),
			URL: "https://example.com/p", Path: "/p", UID: fmt.Sprintf("u%d", e.sent%7), RT: now, Device: "desktop",
		}
		data, err := event.Marshal(&ev)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, stream.Entry{Key: ev.PartitionKey(), Data: data})
	}
	if _, err := e.log.Put(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
}

// tips is the last sequence number of every shard.
func (e *env) tips(t *testing.T) map[string]string {
	t.Helper()
	shards, err := e.log.Shards(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range shards {
		out[s.ID] = e.log.Tip(s.ID)
	}
	return out
}

// positions is where namespace ns stands in every shard.
func (e *env) positions(t *testing.T, ns string) map[string]string {
	t.Helper()
	st := redisagg.New(e.rdb, e.rt.Current().Catalog, redisagg.Config{Namespace: ns, NoDeltas: true})
	out := map[string]string{}
	for id := range e.tips(t) {
		p, err := st.Position(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = p.Seq
	}
	return out
}

// waitAt waits until namespace ns stands at want in every shard.
func (e *env) waitAt(t *testing.T, ns string, want map[string]string) {
	t.Helper()
	waitFor(t, ns+" at "+fmt.Sprint(want), func() bool { return maps.Equal(e.positions(t, ns), want) })
}

// replay builds namespace ns from the whole stream and waits until it is
// ready.
func (e *env) replay(t *testing.T, ns string) {
	t.Helper()
	st, err := e.rt.Replay(context.Background(), control.ReplayRequest{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "job "+st.ID, func() bool {
		j, ok := e.rt.Job(st.ID)
		if !ok {
			t.Fatalf("job %s not listed", st.ID)
		}
		if j.State == control.JobFailed {
			t.Fatalf("job %s failed: %s", st.ID, j.Error)
		}
		return j.State == control.JobDone
	})
}

// metric sums the samples of the counter or gauge family name whose
// labels include every pair of labels ("k=v").
func (e *env) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	fams, err := e.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	samples:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				if have[k] != v {
					continue samples
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// waitFor polls cond every 10ms; the deadline only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// isErr reports whether err wraps want (nil wants nil).
func isErr(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}
