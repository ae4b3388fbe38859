package redisagg

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/internal/redistest"
)

// servers are the Redis deployments the namespace-wide tests (Compare,
// Drop) run on: SCAN covers one node, or every master of a cluster.
func servers(t *testing.T) map[string]redis.UniversalClient {
	return map[string]redis.UniversalClient{
		"single":  redistest.Start(t).Client(t),
		"cluster": redistest.StartCluster(t, 3),
	}
}

// flush empties every node of rdb.
func flush(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.FlushDB(ctx).Err() })
	} else {
		err = rdb.FlushDB(ctx).Err()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestCompare writes buckets into two namespaces of a real redis-server
// and of a real cluster and checks Compare reports exactly the counters
// that differ, and only for buckets wholly inside the window.
func TestCompare(t *testing.T) {
	ctx := context.Background()
	cat := catalog(t)
	const hour = 3_600_000
	base := int64(1_790_000_000_000) / hour * hour
	type op struct {
		key    string
		fields []any // HSET pairs; for a "u" key, PFADD members
	}
	cases := []struct {
		name         string
		ops          []op
		from, to     int64
		want         []Drift
		wantCounters int
	}{
		{
			name: "equal",
			ops: []op{
				{fmt.Sprintf("p:a:{demo}:c:pageviews:1m:%d", base), []any{"_", 3, "path\x1f/x", 3, "#path", 1}},
				{fmt.Sprintf("p:b:{demo}:c:pageviews:1m:%d", base), []any{"_", 3, "path\x1f/x", 3, "#path", 1}},
			},
			from: base, to: base + hour, wantCounters: 2,
		},
		{
			name: "a dimension value and the total differ",
			ops: []op{
				{fmt.Sprintf("p:a:{demo}:c:pageviews:1m:%d", base+60_000), []any{"_", 8, "path\x1f/x", 5, "path\x1f/y", 3}},
				{fmt.Sprintf("p:b:{demo}:c:pageviews:1m:%d", base+60_000), []any{"_", 7, "path\x1f/x", 5, "path\x1f/y", 2}},
			},
			from: base, to: base + hour, wantCounters: 3,
			want: []Drift{
				{Site: "demo", Metric: "pageviews", Step: "1m", Bucket: base + 60_000, Live: 8, Recomputed: 7},
				{Site: "demo", Metric: "pageviews", Step: "1m", Bucket: base + 60_000, Dim: "path", Value: "/y", Live: 3, Recomputed: 2},
			},
		},
		{
			name: "a bucket only in the recomputation",
			ops: []op{
				{fmt.Sprintf("p:b:{shop}:c:events:10s:%d", base+10_000), []any{"_", 2, "type\x1fclick", 2}},
			},
			from: base, to: base + hour, wantCounters: 2,
			want: []Drift{
				{Site: "shop", Metric: "events", Step: "10s", Bucket: base + 10_000, Recomputed: 2},
				{Site: "shop", Metric: "events", Step: "10s", Bucket: base + 10_000, Dim: "type", Value: "click", Recomputed: 2},
			},
		},
		{
			name: "sites in different slots, ordered by site then step width",
			ops: []op{
				{fmt.Sprintf("p:a:{shop}:c:events:1m:%d", base), []any{"_", 1}},
				{fmt.Sprintf("p:a:{shop}:c:events:10s:%d", base), []any{"_", 1}},
				{fmt.Sprintf("p:b:{demo}:c:events:10s:%d", base), []any{"_", 1}},
			},
			from: base, to: base + hour, wantCounters: 3,
			want: []Drift{
				{Site: "demo", Metric: "events", Step: "10s", Bucket: base, Recomputed: 1},
				{Site: "shop", Metric: "events", Step: "10s", Bucket: base, Live: 1},
				{Site: "shop", Metric: "events", Step: "1m", Bucket: base, Live: 1},
			},
		},
		{
			name: "outside the window, another namespace, an unknown metric",
			ops: []op{
				{fmt.Sprintf("p:a:{demo}:c:pageviews:1m:%d", base+2*hour), []any{"_", 1}},
				{fmt.Sprintf("p:ab:{demo}:c:pageviews:1m:%d", base), []any{"_", 1}},
				{fmt.Sprintf("p:a:{demo}:c:nosuch:1m:%d", base), []any{"_", 1}},
			},
			from: base, to: base + hour,
		},
		{
			name: "uniques",
			ops: []op{
				{fmt.Sprintf("p:a:{demo}:u:visitors:1h:%d", base), []any{"u1", "u2", "u3"}},
				{fmt.Sprintf("p:b:{demo}:u:visitors:1h:%d", base), []any{"u1", "u2"}},
			},
			from: base, to: base + hour, wantCounters: 1,
			want: []Drift{{Site: "demo", Metric: "visitors", Step: "1h", Bucket: base, Live: 3, Recomputed: 2}},
		},
	}
	for name, rdb := range servers(t) {
		for _, tc := range cases {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				flush(t, rdb)
				for _, o := range tc.ops {
					var err error
					if isUnique(o.key) {
						err = rdb.PFAdd(ctx, o.key, o.fields...).Err()
					} else {
						err = rdb.HSet(ctx, o.key, o.fields...).Err()
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				rep, err := Compare(ctx, rdb, cat, "a", "b", tc.from, tc.to)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(rep.Drift) != fmt.Sprint(append([]Drift{}, tc.want...)) {
					t.Fatalf("drift %+v, want %+v", rep.Drift, tc.want)
				}
				if rep.Counters != tc.wantCounters {
					t.Fatalf("%d counters compared, want %d", rep.Counters, tc.wantCounters)
				}
			})
		}
	}
}

func isUnique(key string) bool {
	for _, ns := range []string{"a", "b"} {
		if _, _, _, _, ok := KeysFor(ns).parseBucket(key, kindUnique); ok {
			return true
		}
	}
	return false
}

// FuzzParseBucketKey checks the key parser Compare uses on whatever SCAN
// returns: no panic, and a key it accepts is exactly the one its parts
// make.
func FuzzParseBucketKey(f *testing.F) {
	f.Add("p:v1:{demo}:c:pageviews:1m:1764258000000", "v1", "c")
	f.Add("p:v1:{demo}:u:visitors:10s:1764258000000", "v1", "u")
	f.Add("p:v1:{a}:c:b}:c:x:1m:5", "v1", "c")
	f.Add("p:v1:{demo}:t:pageviews:path:1m:1764258000000", "v1", "c")
	f.Fuzz(func(t *testing.T, key, ns, kind string) {
		k := KeysFor(ns)
		site, m, step, b, ok := k.parseBucket(key, kind)
		if !ok {
			return
		}
		if back := k.bucket(site, kind, m, step, b); back != key {
			// Leading zeros or a '+' in the bucket parse to the same
			// number; anything else must round-trip.
			if _, _, _, b2, ok2 := k.parseBucket(back, kind); !ok2 || b2 != b {
				t.Fatalf("%q parsed to site %q metric %q step %q bucket %d, which make %q", key, site, m, step, b, back)
			}
		}
	})
}
