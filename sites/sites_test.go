package sites

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/internal/redistest"
)

const testKey = "sites-test" // any key: the node passes redisagg.Keys.Sites

func newSet(t *testing.T, rdb redis.UniversalClient, cfg Config) *Set {
	t.Helper()
	cfg.Redis, cfg.Key = rdb, testKey
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAdmit(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	type step struct {
		site, reason string
	}
	cases := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{name: "static", cfg: Config{Static: []string{"demo", "shop"}}, steps: []step{
			{"demo", ""}, {"shop", ""}, {"other", ReasonUnknown}, {"other", ReasonUnknown},
		}},
		{name: "open within cap", cfg: Config{Static: []string{Any, "demo"}, Max: 2}, steps: []step{
			{"demo", ""}, {"a", ""}, {"b", ""}, {"a", ""}, {"c", ReasonFull}, {"b", ""},
		}},
		{name: "open over rate", cfg: Config{Static: []string{Any}, Max: 100, NewPerMinute: 0.001, Burst: 2}, steps: []step{
			{"a", ""}, {"b", ""}, {"c", ReasonRate}, {"a", ""},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := rdb.Del(ctx, testKey).Err(); err != nil {
				t.Fatal(err)
			}
			s := newSet(t, rdb, tc.cfg)
			for i, st := range tc.steps {
				msg, reason, err := s.Admit(ctx, st.site)
				if err != nil {
					t.Fatal(err)
				}
				if reason != st.reason || (reason == "") != (msg == "") {
					t.Errorf("step %d: site %s: reason %q (%q), want %q", i, st.site, reason, msg, st.reason)
				}
				if reason != "" && !strings.Contains(msg, `"`+st.site+`"`) {
					t.Errorf("step %d: the refusal %q does not name site %s", i, msg, st.site)
				}
			}
		})
	}
}

// TestFleet runs two nodes' sets on one Redis: the cap holds across both,
// and a site an admin adds through one is admitted by the other after a
// reload.
func TestFleet(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	const max = 5
	reg := prometheus.NewRegistry()
	a := newSet(t, rdb, Config{Static: []string{Any}, Max: max, Registerer: reg})
	b := newSet(t, rdb, Config{Static: []string{Any}, Max: max})
	admitted := 0
	for i := range 2 * max {
		s := a
		if i%2 == 1 {
			s = b
		}
		if _, reason, err := s.Admit(ctx, fmt.Sprintf("s%d", i)); err != nil {
			t.Fatal(err)
		} else if reason == "" {
			admitted++
		}
	}
	if n := rdb.SCard(ctx, testKey).Val(); admitted != max || n != max {
		t.Errorf("admitted %d new sites, the shared set holds %d; want %d and %d", admitted, n, max, max)
	}
	var m dto.Metric
	if err := a.m.admitted.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != max/2+1 {
		t.Errorf("pulse_sites_admitted_total of node a: %g, want %d", got, max/2+1)
	}

	static := newSet(t, rdb, Config{Static: []string{"demo"}})
	if _, reason, _ := static.Admit(ctx, "late"); reason != ReasonUnknown {
		t.Fatalf("site late before it was added: reason %q", reason)
	}
	if added, err := a.Add(ctx, "late"); err != nil || !added {
		t.Fatalf("add late: %v %v", added, err)
	}
	if n := rdb.SCard(ctx, testKey).Val(); n != max+1 {
		t.Errorf("after an admin's add the set holds %d sites, want %d (admins pass the cap)", n, max+1)
	}
	if err := static.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, reason, _ := static.Admit(ctx, "late"); reason != "" {
		t.Errorf("site late after a reload: reason %q, want admitted", reason)
	}
	if _, err := a.Add(ctx, "Bad!"); err == nil {
		t.Error("added a site id with capitals and !")
	}
}

// TestRun reloads the shared set until its context ends, and returns.
func TestRun(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	s := newSet(t, rdb, Config{Static: []string{"demo"}, Refresh: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	if err := rdb.SAdd(ctx, testKey, "other").Err(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, reason, _ := s.Admit(ctx, "other"); reason == "" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestFileSurvivesForgetfulRedis: with File set, the sites an admin added
// and those admitted in open mode are known again after the Redis forgot
// everything (the embedded Redis at a restart); a line of zeros, as a
// crash may leave, is skipped.
func TestFileSurvivesForgetfulRedis(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	file := filepath.Join(t.TempDir(), "sites")
	cfg := Config{Static: []string{"demo", Any}, File: file}
	s := newSet(t, rdb, cfg)
	if added, err := s.Add(ctx, "by-admin"); err != nil || !added {
		t.Fatalf("Add: %v %v", added, err)
	}
	if msg, _, err := s.Admit(ctx, "by-traffic"); msg != "" || err != nil {
		t.Fatalf("Admit: %q %v", msg, err)
	}
	if _, err := s.Add(ctx, "demo"); err != nil { // static: not kept again
		t.Fatal(err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("\x00\x00\x00") // what a crash may leave of an append
	f.Close()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	closed := newSet(t, rdb, Config{Static: []string{"demo"}, File: file})
	for _, tc := range []struct {
		site  string
		known bool
	}{{"by-admin", true}, {"by-traffic", true}, {"demo", true}, {"other", false}} {
		msg, _, err := closed.Admit(ctx, tc.site)
		if err != nil || (msg == "") != tc.known {
			t.Errorf("site %s: admitted %v (%q, %v), want %v", tc.site, msg == "", msg, err, tc.known)
		}
	}
	b, _ := os.ReadFile(file)
	if got := strings.Count(string(b), "demo"); got != 0 {
		t.Errorf("the file lists static site demo %d times, want 0:\n%s", got, b)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("sites file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}
