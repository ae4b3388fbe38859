package replay

import (
	"context"
	"fmt"
	"testing"

	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
)

// TestCompare writes buckets into two namespaces of a real redis-server
// and checks Compare reports exactly the counters that differ, and only
// for buckets wholly inside the window.
func TestCompare(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	const hour = 3_600_000
	base := int64(1_790_000_000_000) / hour * hour
	type op struct {
		ns, key string
		fields  []any // HSET pairs; for a "u" key, PFADD members
	}
	cases := []struct {
		name     string
		ops      []op
		from, to int64
		want     []Drift
	}{
		{
			name: "equal",
			ops: []op{
				{"a", fmt.Sprintf("p:a:{demo}:c:pageviews:1m:%d", base), []any{"_", 3, "path\x1f/x", 3, "#path", 1}},
				{"b", fmt.Sprintf("p:b:{demo}:c:pageviews:1m:%d", base), []any{"_", 3, "path\x1f/x", 3, "#path", 1}},
			},
			from: base, to: base + hour,
		},
		{
			name: "a dimension value and the total differ",
			ops: []op{
				{"a", fmt.Sprintf("p:a:{demo}:c:pageviews:1m:%d", base+60_000), []any{"_", 8, "path\x1f/x", 5, "path\x1f/y", 3}},
				{"b", fmt.Sprintf("p:b:{demo}:c:pageviews:1m:%d", base+60_000), []any{"_", 7, "path\x1f/x", 5, "path\x1f/y", 2}},
			},
			from: base, to: base + hour,
			want: []Drift{
				{Site: "demo", Metric: "pageviews", Step: "1m", Bucket: base + 60_000, Live: 8, Recomputed: 7},
				{Site: "demo", Metric: "pageviews", Step: "1m", Bucket: base + 60_000, Dim: "path", Value: "/y", Live: 3, Recomputed: 2},
			},
		},
		{
			name: "a bucket only in the recomputation",
			ops: []op{
				{"b", fmt.Sprintf("p:b:{shop}:c:events:10s:%d", base+10_000), []any{"_", 2, "type\x1fclick", 2}},
			},
			from: base, to: base + hour,
			want: []Drift{
				{Site: "shop", Metric: "events", Step: "10s", Bucket: base + 10_000, Recomputed: 2},
				{Site: "shop", Metric: "events", Step: "10s", Bucket: base + 10_000, Dim: "type", Value: "click", Recomputed: 2},
			},
		},
		{
			name: "outside the window",
			ops: []op{
				{"a", fmt.Sprintf("p:a:{demo}:c:pageviews:1m:%d", base+2*hour), []any{"_", 1}},
			},
			from: base, to: base + hour,
		},
		{
			name: "uniques",
			ops: []op{
				{"a", fmt.Sprintf("p:a:{demo}:u:visitors:1h:%d", base), []any{"u1", "u2", "u3"}},
				{"b", fmt.Sprintf("p:b:{demo}:u:visitors:1h:%d", base), []any{"u1", "u2"}},
			},
			from: base, to: base + hour,
			want: []Drift{{Site: "demo", Metric: "visitors", Step: "1h", Bucket: base, Live: 3, Recomputed: 2}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := rdb.FlushDB(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			for _, o := range tc.ops {
				var err error
				if isUnique(o.key, o.ns) {
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
		})
	}
}

func isUnique(key, ns string) bool {
	_, _, _, _, ok := parseBucketKey(key, ns, "u")
	return ok
}
