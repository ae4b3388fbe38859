package redisagg

import (
	"context"
	"slices"
	"testing"
)

// TestDrop drops one namespace of a real redis-server and of a real
// cluster and leaves the others (including one whose name extends it),
// the registry and the archive checkpoints alone.
func TestDrop(t *testing.T) {
	ctx := context.Background()
	v2 := KeysFor("v2")
	dropped := []string{v2.count("demo", "events", "1m", 0), v2.position("shard-000001"), v2.DeltaLog("demo", "events"),
		v2.LeaseShard("s00"), v2.ArchiveCheckpoint()}
	kept := []string{KeysFor("v20").count("demo", "events", "1m", 0), KeysFor("v1").checkpoint("demo"),
		v2.Registry(), KeysFor("").ArchiveCheckpoint(), "other:v2:x"}
	cases := []struct {
		name string
		ns   string
		want int64
		left []string
	}{
		{"namespace", "v2", int64(len(dropped)), kept},
		{"glob characters match only themselves", "v*", 0, append(slices.Clone(dropped), kept...)},
		{"absent namespace", "v3", 0, append(slices.Clone(dropped), kept...)},
	}
	for name, rdb := range servers(t) {
		for _, tc := range cases {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				flush(t, rdb)
				for _, k := range append(slices.Clone(dropped), kept...) {
					if err := rdb.Set(ctx, k, "x", 0).Err(); err != nil {
						t.Fatal(err)
					}
				}
				n, err := KeysFor(tc.ns).Drop(ctx, rdb)
				if err != nil || n != tc.want {
					t.Fatalf("Drop(%s): %d, %v; want %d", tc.ns, n, err, tc.want)
				}
				var left []string
				for _, k := range append(slices.Clone(dropped), kept...) {
					if rdb.Exists(ctx, k).Val() == 1 {
						left = append(left, k)
					}
				}
				slices.Sort(left)
				if want := slices.Sorted(slices.Values(tc.left)); !slices.Equal(left, want) {
					t.Fatalf("keys left %v, want %v", left, want)
				}
			})
		}
	}
}
