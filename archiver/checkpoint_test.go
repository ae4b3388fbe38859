package archiver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulsehq/pulse/internal/redistest"
)

func TestRedisCheckpoints(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	tests := []struct {
		name, namespace, key string
	}{
		{"default", "", "p:{archive}:ck"},
		{"namespace", "staging", "p:staging:{archive}:ck"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ck := NewRedisCheckpoints(rdb, tc.namespace)
			if ck.Key() != tc.key {
				t.Fatalf("key %q, want %q", ck.Key(), tc.key)
			}
			if c, err := ck.Load(ctx, "shard-000001"); err != nil || c != (Checkpoint{}) {
				t.Fatalf("load of a shard never saved = %+v, %v; want zero", c, err)
			}
			for _, c := range []Checkpoint{
				{Durable: "17"},
				{Durable: "17", FlushAt: "49590338271490256608559692538361571095921575989136588898000001"},
				{FlushAt: "3"},
				{},
			} {
				if err := ck.Save(ctx, "shard-000001", c); err != nil {
					t.Fatal(err)
				}
				got, err := ck.Load(ctx, "shard-000001")
				if err != nil || got != c {
					t.Errorf("saved %+v, loaded %+v, %v", c, got, err)
				}
			}
			if n, _ := rdb.HLen(ctx, tc.key).Result(); n != 1 {
				t.Errorf("hash %s has %d fields, want 1 per shard", tc.key, n)
			}
		})
	}
	t.Run("corrupt", func(t *testing.T) {
		ck := NewRedisCheckpoints(rdb, "corrupt")
		rdb.HSet(ctx, ck.Key(), "s", `{"durable":"x1"}`)
		if _, err := ck.Load(ctx, "s"); err == nil {
			t.Error("loaded a checkpoint with a non-decimal seq")
		}
	})
}

// TestRedisCheckpointsFenced plays the archive group's handover: each
// step is one archiver (a, b: two processes sharing the key) claiming or
// saving, in order, and what Redis must answer.
func TestRedisCheckpointsFenced(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	a, b := NewRedisCheckpoints(rdb, "fence"), NewRedisCheckpoints(rdb, "fence")
	ck := map[string]*RedisCheckpoints{"a": a, "b": b}
	steps := []struct {
		who     string
		claim   int64  // > 0: Claim with this fence; else Save durable
		durable string // saved by a Save
		fenced  bool   // refused with ErrFenced
	}{
		{who: "a", durable: "1"},               // unfenced: no group yet
		{who: "a", claim: 5},                   // a takes the lease
		{who: "a", durable: "2"},               // and saves with fence 5
		{who: "b", claim: 4, fenced: true},     // a stale lease cannot claim
		{who: "b", claim: 7},                   // b takes over
		{who: "a", durable: "3", fenced: true}, // a, deposed, is refused
		{who: "b", durable: "4"},               // b is not
		{who: "b", claim: 7},                   // claiming again with its fence is fine
		{who: "a", claim: 9},                   // a takes the lease back
		{who: "b", durable: "5", fenced: true},
		{who: "a", durable: "6"},
	}
	want := ""
	for i, st := range steps {
		var err error
		if st.claim > 0 {
			err = ck[st.who].Claim(ctx, st.claim)
		} else {
			err = ck[st.who].Save(ctx, "s1", Checkpoint{Durable: st.durable})
			if err == nil {
				want = st.durable
			}
		}
		if errors.Is(err, ErrFenced) != st.fenced || (err != nil && !st.fenced) {
			t.Fatalf("step %d (%+v): %v", i, st, err)
		}
		got, err := b.Load(ctx, "s1")
		if err != nil || got.Durable != want {
			t.Fatalf("step %d (%+v): stored %+v, %v; want durable %q", i, st, got, err, want)
		}
	}
	if err := a.Claim(ctx, 0); err == nil || errors.Is(err, ErrFenced) {
		t.Errorf("claim with fence 0 = %v, want a usage error", err)
	}
}

func TestFileCheckpoints(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir() + "/ck"
	ck := NewFileCheckpoints(dir)
	if c, err := ck.Load(ctx, "shard-000001"); err != nil || c != (Checkpoint{}) {
		t.Fatalf("load before any save = %+v, %v; want zero", c, err)
	}
	for _, c := range []Checkpoint{{Durable: "17"}, {Durable: "17", FlushAt: "40"}, {}} {
		if err := ck.Save(ctx, "shard-000001", c); err != nil {
			t.Fatal(err)
		}
		// A new instance stands for a restarted process.
		if got, err := NewFileCheckpoints(dir).Load(ctx, "shard-000001"); err != nil || got != c {
			t.Errorf("saved %+v, loaded %+v, %v", c, got, err)
		}
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "shard-000001.json"): 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, want mode %v (checkpoints are private to the owner)", p, fi, want)
		}
	}
	for _, bad := range []string{"", "../x", ".hidden", "a/b"} {
		if err := ck.Save(ctx, bad, Checkpoint{}); err == nil {
			t.Errorf("saved a checkpoint for shard id %q", bad)
		}
	}
}

func TestDecodeCheckpoint(t *testing.T) {
	tests := []struct {
		in   string
		want Checkpoint
		ok   bool
	}{
		{`{}`, Checkpoint{}, true},
		{`{"durable":"12","flush_at":"15"}`, Checkpoint{Durable: "12", FlushAt: "15"}, true},
		{`{"durable":"012"}`, Checkpoint{}, false},
		{`{"durable":12}`, Checkpoint{}, false},
		{`{"flush_at":"1e3"}`, Checkpoint{}, false},
		{`12`, Checkpoint{}, false},
		{``, Checkpoint{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := decodeCheckpoint([]byte(tc.in))
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("decode %q = %+v, %v; want %+v, ok=%v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

func FuzzDecodeCheckpoint(f *testing.F) {
	f.Add([]byte(`{"durable":"12","flush_at":"15"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCheckpoint(b)
		if err != nil {
			return
		}
		back, err := decodeCheckpoint(encodeCheckpoint(c))
		if err != nil || back != c {
			t.Fatalf("round trip of %+v: %+v, %v", c, back, err)
		}
	})
}
