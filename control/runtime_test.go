package control_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/pulsehq/pulse/control"
	"github.com/pulsehq/pulse/namespace"
)

// TestPromote promotes twice, on one registry: each promote switches the
// current namespace, stops the old aggregator where it was, and starts one
// on the new namespace from the positions stored there (it reads only the
// records after them), and the aggregator's metrics, registered once, go
// on counting what the live aggregator reads.
//
// The counts are checked as totals over the test, not as differences to a
// reading taken when the positions in Redis got somewhere: an aggregator
// adds a commit to its counters after the store applied it, so a reading
// taken as soon as the position shows can miss the last commit, which then
// lands in the next difference.
func TestPromote(t *testing.T) {
	for _, tc := range []struct {
		name  string
		group *control.Group
	}{
		{"alone", nil},
		{"group", &control.Group{Owner: "node-a", LeaseTTL: 300 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, func(c *control.Config) { c.Group = tc.group })
			read := func() float64 { return e.metric(t, "pulse_aggregator_events_total") }
			// readTotal waits until the live aggregators read want records
			// in all and checks they read no more: each reads only the
			// records after the positions it started from.
			readTotal := func(want int, what string) {
				t.Helper()
				waitFor(t, fmt.Sprintf("%d records counted", want), func() bool { return read() >= float64(want) })
				if got := read(); got != float64(want) {
					t.Errorf("the live aggregators read %v records in all, want %d (%s)", got, want, what)
				}
			}

			e.put(t, 40)
			t1 := e.tips(t)
			e.waitAt(t, "v1", t1)
			e.replay(t, "v2")
			e.put(t, 30)
			t2 := e.tips(t)
			e.waitAt(t, "v1", t2)
			if got := e.positions(t, "v2"); !maps.Equal(got, t1) {
				t.Fatalf("v2 (built, not live) at %v, want %v", got, t1)
			}
			readTotal(70, "v1 from the start")

			prev, err := e.rt.Promote(ctx, "v2")
			if err != nil || prev != "v1" {
				t.Fatalf("promote v2: prev %q, %v; want v1, nil", prev, err)
			}
			if cur := e.rt.Current().Info.Name; cur != "v2" {
				t.Fatalf("current is %s after promoting v2", cur)
			}
			e.waitAt(t, "v2", t2)
			readTotal(70+30, "v2 from t1, where the replay ended")

			e.put(t, 10)
			t3 := e.tips(t)
			e.waitAt(t, "v2", t3)
			if got := e.positions(t, "v1"); !maps.Equal(got, t2) {
				t.Errorf("v1 moved to %v after it was promoted away from at %v", got, t2)
			}
			readTotal(100+10, "v2 after t2")

			if prev, err := e.rt.Promote(ctx, "v1"); err != nil || prev != "v2" {
				t.Fatalf("promote v1 again: prev %q, %v; want v2, nil", prev, err)
			}
			e.waitAt(t, "v1", t3)
			readTotal(110+10, "v1 from t2, where it stopped")

			// Every read sets its shard's lag, an empty one too, after the
			// commit before it is counted: wait for both shards' first.
			waitFor(t, "the live aggregator's lag of both shards, 0 in the metric", func() bool {
				return len(e.rt.Lag()) == 2 && e.metric(t, "pulse_aggregator_lag_records") == 0
			})
			if tc.group != nil {
				// The lease manager of the live aggregator, not the one
				// of the namespace promoted away from.
				waitFor(t, "both shard leases held", func() bool { return e.metric(t, "pulse_lease_owned") == 2 })
			}
		})
	}
}

// TestFollow: a node follows a promote another node made in the shared
// registry.
func TestFollow(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	e.put(t, 20)
	e.waitAt(t, "v1", e.tips(t))
	e.replay(t, "v2")
	other := namespace.New(namespace.NewRedisBackend(e.rdb), namespace.Config{})
	if _, err := other.Promote(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "this node on v2", func() bool { return e.rt.Current().Info.Name == "v2" })
	e.put(t, 5)
	e.waitAt(t, "v2", e.tips(t))
}

// TestDrop: the current namespace cannot be dropped, another one can, and
// its keys go with it.
func TestDrop(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	e.put(t, 20)
	tips := e.tips(t)
	e.waitAt(t, "v1", tips)
	e.replay(t, "v2")
	e.waitAt(t, "v2", tips)

	for _, tc := range []struct {
		name    string
		ns      string
		want    error
		deleted bool
	}{
		{"current", "v1", namespace.ErrConflict, false},
		{"unknown", "nope", namespace.ErrNotFound, false},
		{"another", "v2", nil, true},
		{"dropped already", "v2", namespace.ErrNotFound, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := e.rt.Drop(ctx, tc.ns)
			if !isErr(err, tc.want) {
				t.Fatalf("Drop(%s) = %d, %v; want %v", tc.ns, n, err, tc.want)
			}
			if tc.deleted != (n > 0) {
				t.Errorf("Drop(%s) deleted %d keys", tc.ns, n)
			}
		})
	}
	if got := e.positions(t, "v1"); !maps.Equal(got, tips) {
		t.Errorf("v1 at %v after the drops, want %v", got, tips)
	}
	for id, seq := range e.positions(t, "v2") {
		if seq != "" {
			t.Errorf("dropped v2 still has a position in shard %s: %s", id, seq)
		}
	}
	d, err := e.rt.Namespaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Find("v2"); ok {
		t.Errorf("v2 still listed after its drop: %+v", d.Namespaces)
	}
}

// TestJobs: a replay and a verify go through the job table: started
// running, listed, done with their results; an unknown id is not found.
func TestJobs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	from := time.Now().Add(-time.Hour).UnixMilli()
	e.put(t, 25)
	tips := e.tips(t)
	e.waitAt(t, "v1", tips)

	rep, err := e.rt.Replay(ctx, control.ReplayRequest{Namespace: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kind != "replay" || rep.Namespace != "v2" || rep.ID == "" || rep.Started.IsZero() {
		t.Errorf("replay started as %+v", rep)
	}
	waitFor(t, "replay done", func() bool { s, _ := e.rt.Job(rep.ID); return s.State != control.JobRunning })
	if s, _ := e.rt.Job(rep.ID); s.State != control.JobDone || s.Progress.Events != 25 || s.Finished.IsZero() {
		t.Errorf("replay finished as %+v, want done with 25 events", s)
	}
	e.waitAt(t, "v2", tips)

	ver, err := e.rt.Verify(ctx, control.VerifyRequest{From: from, To: time.Now().Add(time.Hour).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "verify done", func() bool { s, _ := e.rt.Job(ver.ID); return s.State != control.JobRunning })
	s, _ := e.rt.Job(ver.ID)
	if s.State != control.JobDone || s.Verify == nil {
		t.Fatalf("verify finished as %+v", s)
	}
	if v := s.Verify; v.Live != "v1" || !v.Stable || v.Buckets == 0 || len(v.Drift) != 0 {
		t.Errorf("verify of a caught-up v1: %+v; want stable, buckets compared, no drift", v)
	}
	d, err := e.rt.Namespaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Namespaces) != 2 {
		t.Errorf("namespaces after verify: %+v; want v1 and v2 (the scratch one dropped)", d.Namespaces)
	}

	jobs := e.rt.Jobs()
	if len(jobs) != 2 || jobs[0].ID != rep.ID || jobs[1].ID != ver.ID {
		t.Errorf("Jobs() = %+v; want the replay, then the verify", jobs)
	}
	if s, ok := e.rt.Job("replay-000000000000"); ok {
		t.Errorf("Job of an unknown id = %+v, true", s)
	}
}
