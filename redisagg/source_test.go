package redisagg

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

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
