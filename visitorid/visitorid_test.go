package visitorid

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/redisagg"
)

func TestID(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	// Two ingest nodes sharing one Redis.
	a, b := New(rdb), New(rdb)
	day := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	addr, ua := netip.MustParseAddr("80.156.0.1"), "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	id := func(x *IDs, site string, client netip.Addr, ua string, at time.Time) string {
		t.Helper()
		v, err := x.ID(ctx, site, client, ua, at)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	base := id(a, "shop", addr, ua, day)
	if len(base) != 32 {
		t.Fatalf("id %q, want 32 hex digits", base)
	}
	same := []struct {
		name string
		got  string
	}{
		{"later the same day", id(a, "shop", addr, ua, day.Add(14*time.Hour))},
		{"on another node", id(b, "shop", addr, ua, day.Add(time.Hour))},
		{"as an IPv4-mapped address", id(b, "shop", netip.MustParseAddr("::ffff:80.156.0.1"), ua, day)},
	}
	for _, tc := range same {
		if tc.got != base {
			t.Errorf("%s: %s, want %s", tc.name, tc.got, base)
		}
	}
	other := []struct {
		name string
		got  string
	}{
		{"another site", id(a, "blog", addr, ua, day)},
		{"another address", id(a, "shop", netip.MustParseAddr("80.156.0.2"), ua, day)},
		{"another browser", id(a, "shop", addr, ua+" Edg/131", day)},
		{"the next day", id(b, "shop", addr, ua, day.Add(24*time.Hour))},
	}
	for _, tc := range other {
		if tc.got == base || tc.got == "" {
			t.Errorf("%s: %q, want an id other than %s", tc.name, tc.got, base)
		}
	}
	if got := id(a, "shop", netip.Addr{}, ua, day); got != "" {
		t.Errorf("no address: %q, want none", got)
	}
	// The salt expires: an old day's ids cannot be computed again.
	ttl, err := rdb.TTL(ctx, redisagg.Keys{}.VisitorSalt("2026-12-07")).Result()
	if err != nil || ttl <= 0 || ttl > SaltTTL {
		t.Errorf("salt TTL %v (%v), want (0, %v]", ttl, err, SaltTTL)
	}
}

// TestIDFailsWithoutRedis: a day's first id needs its salt; without Redis
// it is an error, not an id under some other salt.
func TestIDFailsWithoutRedis(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	_, err := New(rdb).ID(context.Background(), "shop", netip.MustParseAddr("80.156.0.1"), "x", time.Now())
	if err == nil {
		t.Fatal("an id without the day's salt")
	}
}

// TestDirSalts: the embedded default's salts outlive the process (a new
// IDs over the same directory gives the same ids), are private files, and
// old ones are removed when a new day's is made.
func TestDirSalts(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	day := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	addr := netip.MustParseAddr("80.156.0.1")
	first, err := NewWith(DirSalts{Dir: dir}).ID(ctx, "shop", addr, "ua", day)
	if err != nil {
		t.Fatal(err)
	}
	again, err := NewWith(DirSalts{Dir: dir}).ID(ctx, "shop", addr, "ua", day.Add(time.Hour))
	if err != nil || again != first {
		t.Fatalf("after a restart: %q (%v), want %q", again, err, first)
	}
	path := filepath.Join(dir, "2026-12-07")
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("salt file %v %v, want mode 0600", info, err)
	}
	old := time.Now().Add(-SaltTTL - time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	next, err := NewWith(DirSalts{Dir: dir}).ID(ctx, "shop", addr, "ua", day.Add(24*time.Hour))
	if err != nil || next == first {
		t.Fatalf("the next day: %q (%v), want another id", next, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the old salt is still there (%v)", err)
	}
}
