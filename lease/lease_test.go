package lease

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/internal/redistest"
)

// backend makes clients of one server shared by every instance of a test.
type backend struct {
	name  string
	start func(t *testing.T) func() redis.UniversalClient
}

var backends = []backend{
	{"redis", func(t *testing.T) func() redis.UniversalClient {
		s := redistest.Start(t)
		return func() redis.UniversalClient { return s.Client(t) }
	}},
	{"miniredis", func(t *testing.T) func() redis.UniversalClient {
		s := miniredis.RunT(t)
		return func() redis.UniversalClient {
			c := redis.NewClient(&redis.Options{Addr: s.Addr()})
			t.Cleanup(func() { _ = c.Close() })
			return c
		}
	}},
}

// scenarios run against every backend, each in its own namespace.
var scenarios = []struct {
	name string
	run  func(t *testing.T, client func() redis.UniversalClient)
}{
	{"single takes all", func(t *testing.T, client func() redis.UniversalClient) {
		g := newGroup(t, client, 8)
		a := g.start("a", Config{}, consumerOpts{})
		g.waitSplit([]*instance{a}, 8)
	}},
	{"split, join", func(t *testing.T, client func() redis.UniversalClient) {
		g := newGroup(t, client, 8)
		// Workers that take longer to stop than a round: a lease deleted
		// before Done would let the next owner start while the old worker
		// still runs. The release timeout is out of the way.
		co := consumerOpts{stopDelay: testTTL / 2}
		cfg := Config{ReleaseTimeout: time.Minute}
		ins := []*instance{g.start("c", cfg, co), g.start("a", cfg, co), g.start("b", cfg, co)}
		// Members ordered by id get the larger shares: a 3, b 3, c 2.
		g.waitSplit(ins, 2, 3, 3)
		ins = append(ins, g.start("d", cfg, co))
		g.waitSplit(ins, 2, 2, 2, 2)
	}},
	{"death and leave", func(t *testing.T, client func() redis.UniversalClient) {
		g := newGroup(t, client, 8)
		ins := []*instance{g.start("a", Config{}, consumerOpts{}), g.start("b", Config{}, consumerOpts{}),
			g.start("c", Config{}, consumerOpts{}), g.start("d", Config{}, consumerOpts{})}
		g.waitSplit(ins, 2, 2, 2, 2)
		before := map[string]int64{}
		for sh, f := range ins[3].m.Leases() {
			before[sh] = f
		}
		ins[3].kill() // no release: its leases expire after TTL
		if l := ins[3].m.Leases(); len(l) != 0 {
			t.Fatalf("stopped instance still reports leases %v", l)
		}
		g.waitSplit(ins[:3], 3, 3, 2)
		for sh, f := range before {
			if g.reg.fence(sh) <= f {
				t.Errorf("shard %s: fence %d after the takeover, %d before", sh, g.reg.fence(sh), f)
			}
		}
		// A graceful stop: Leave deletes the leases and the membership.
		ins[1].kill()
		if err := ins[1].m.Leave(context.Background()); err != nil {
			t.Fatal(err)
		}
		rdb := client()
		if n, err := rdb.Exists(context.Background(), ins[1].m.st.keys.LeaseMembers()).Result(); err != nil || n != 1 {
			t.Fatalf("members key: %d, %v", n, err)
		}
		if _, err := rdb.ZScore(context.Background(), ins[1].m.st.keys.LeaseMembers(), "b").Result(); err != redis.Nil {
			t.Fatalf("b still a member after Leave: %v", err)
		}
		g.waitSplit([]*instance{ins[0], ins[2]}, 4, 4)
	}},
	{"stolen lease", func(t *testing.T, client func() redis.UniversalClient) {
		ctx := context.Background()
		g := newGroup(t, client, 4)
		a := g.start("a", Config{}, consumerOpts{})
		g.waitSplit([]*instance{a}, 4)
		old := a.m.Leases()["s01"]
		// Another owner takes s01 as if a had been paused past its TTL.
		rdb := client()
		st := a.m.st
		f, err := rdb.HIncrBy(ctx, st.keys.LeaseFence(), "s01", 1).Result()
		if err != nil {
			t.Fatal(err)
		}
		now, err := rdb.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		exp := now.Add(3 * testTTL).UnixMilli()
		if err := rdb.HSet(ctx, st.keys.LeaseShard("s01"), "owner", "thief", "fence", f, "exp", exp).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.PExpire(ctx, st.keys.LeaseShard("s01"), 3*testTTL).Err(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "stolen lease disappears", func() bool {
			_, ok := a.m.Leases()["s01"]
			return !ok
		})
		// Once the thief's lease expires, a takes it back above the thief.
		waitFor(t, "lease retaken", func() bool { return a.m.Leases()["s01"] > f })
		if f <= old {
			t.Fatalf("thief fence %d not above %d", f, old)
		}
		g.waitSplit([]*instance{a}, 4)
	}},
	{"paused instance", func(t *testing.T, client func() redis.UniversalClient) {
		g := newGroup(t, client, 4)
		hook := &pauseHook{}
		t.Cleanup(hook.resume) // before the group's cleanup stops a
		rdb := client()
		rdb.AddHook(hook)
		a := g.startWith(rdb, "a", Config{}, consumerOpts{})
		g.waitSplit([]*instance{a}, 4)
		old := a.m.Leases()
		hook.pause()
		// Unconfirmed leases disappear locally (and Changes tells the
		// consumer) at TTL, before Redis lets anyone else take them, even
		// with a's Run stuck in a Redis call.
		waitFor(t, "paused instance drops its leases", func() bool {
			return len(a.m.Leases()) == 0 && g.reg.runningBy("a") == 0
		})
		b := g.start("b", Config{}, consumerOpts{})
		g.waitSplit([]*instance{a, b}, 0, 4)
		for sh, f := range b.m.Leases() {
			if f <= old[sh] {
				t.Errorf("shard %s: b's fence %d not above a's %d", sh, f, old[sh])
			}
		}
		hook.resume()
		g.waitSplit([]*instance{a, b}, 2, 2)
	}},
	{"clock jump", func(t *testing.T, client func() redis.UniversalClient) {
		g := newGroup(t, client, 4)
		var mu syncOffset
		a := g.start("a", Config{Now: mu.now}, consumerOpts{})
		g.waitSplit([]*instance{a}, 4)
		old := a.m.Leases()
		mu.add(2 * testTTL)
		if l := a.m.Leases(); len(l) != 0 {
			t.Fatalf("leases %v still reported past their local deadline", l)
		}
		// The leases are still a's in Redis: a takes them again, with new fences.
		waitFor(t, "leases retaken", func() bool {
			l := a.m.Leases()
			for sh, f := range old {
				if l[sh] <= f {
					return false
				}
			}
			return true
		})
		g.waitSplit([]*instance{a}, 4)
	}},
	{"reshard", func(t *testing.T, client func() redis.UniversalClient) {
		g := newGroup(t, client, 4)
		ins := []*instance{g.start("a", Config{}, consumerOpts{}), g.start("b", Config{}, consumerOpts{})}
		g.waitSplit(ins, 2, 2)
		g.setShards(8)
		g.waitSplit(ins, 4, 4)
		g.setShards(6) // shards s06, s07 closed: their leases are given up
		g.waitSplit(ins, 3, 3)
		for _, in := range ins {
			for sh := range in.m.Leases() {
				if sh >= "s06" {
					t.Errorf("%s still holds removed shard %s", in.m.Owner(), sh)
				}
			}
		}
	}},
	{"release timeout", func(t *testing.T, client func() redis.UniversalClient) {
		g := newGroup(t, client, 4)
		reg := prometheus.NewRegistry()
		// a's consumer never calls Done: after ReleaseTimeout the leases go
		// anyway, and fencing guards its workers. A long TTL keeps a loaded
		// machine from losing them by expiry first.
		cfg := Config{TTL: 5 * time.Second, Renew: 100 * time.Millisecond}
		acfg := cfg
		acfg.Registerer, acfg.ReleaseTimeout = reg, 200*time.Millisecond
		a := g.start("a", acfg, consumerOpts{noDone: true})
		g.waitSplit([]*instance{a}, 4)
		b := g.start("b", cfg, consumerOpts{})
		g.waitSplit([]*instance{a, b}, 2, 2)
		if n := gathered(t, reg, "pulse_lease_released_total"); n < 2 {
			t.Fatalf("released %v leases, want at least 2", n)
		}
		if n := gathered(t, reg, "pulse_lease_owned"); n != 2 {
			t.Fatalf("owned gauge %v, want 2", n)
		}
	}},
}

func TestManager(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			client := be.start(t)
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, client)
				})
			}
		})
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
		renew   time.Duration
	}{
		{"defaults", Config{}, false, 10 * time.Second / 3},
		{"renew from ttl", Config{TTL: 3 * time.Second}, false, time.Second},
		{"renew not below ttl", Config{TTL: time.Second, Renew: time.Second}, true, 0},
		{"explicit", Config{TTL: time.Second, Renew: 100 * time.Millisecond}, false, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.cfg.withDefaults()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (c.Renew != tt.renew || c.Owner == "" || c.Namespace != "v1") {
				t.Fatalf("defaults: renew %v owner %q namespace %q", c.Renew, c.Owner, c.Namespace)
			}
		})
	}
	if _, err := New(redis.NewClient(&redis.Options{}), Config{}); err != nil {
		t.Fatal(err)
	}
	a, _ := Config{}.withDefaults()
	b, _ := Config{}.withDefaults()
	if a.Owner == b.Owner {
		t.Fatalf("two default owners are both %q", a.Owner)
	}
}

func TestRunNeedsShards(t *testing.T) {
	m, err := New(redis.NewClient(&redis.Options{}), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background(), nil); err == nil {
		t.Fatal("Run accepted a nil shard list function")
	}
}

// gathered returns the value of an unlabelled counter or gauge.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not gathered", name)
	return 0
}

// TestRedisOutage stops Redis under a running group: every instance drops
// its leases within TTL; once Redis is back (with its data: AOF) they share
// the shards again, with fences above the earlier ones.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	g := newGroup(t, func() redis.UniversalClient { return srv.Client(t) }, 4)
	ins := []*instance{g.start("a", Config{}, consumerOpts{}), g.start("b", Config{}, consumerOpts{})}
	g.waitSplit(ins, 2, 2)
	srv.Kill()
	waitFor(t, "leases dropped while Redis is down", func() bool {
		return len(ins[0].m.Leases())+len(ins[1].m.Leases()) == 0 &&
			g.reg.runningBy("a")+g.reg.runningBy("b") == 0
	})
	srv.Restart(t)
	g.waitSplit(ins, 2, 2)
}
