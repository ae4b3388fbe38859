package redisagg

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/push"
	"github.com/pulsehq/pulse/push/sourcetest"
)

// BenchmarkFanoutRedis is push's BenchmarkFanout end to end over Redis:
// each iteration applies one batch through the real store, whose delta
// reaches the hub through Source (pub/sub, then XRANGE on a gap).
func BenchmarkFanoutRedis(b *testing.B) {
	srv := redistest.Start(b)
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		b.Fatal(err)
	}
	st := New(srv.Client(b), cat, Config{})
	now := time.Now().UnixMilli()
	var seq int64
	apply := func(path string) {
		seq++
		s := strconv.FormatInt(seq, 10)
		u := metric.NewUpdate()
		for _, step := range cat.Steps {
			u.Counts[metric.CountKey{Site: "demo", Metric: "pageviews", Step: step.Name, Bucket: step.Bucket(now)}]++
			u.Counts[metric.CountKey{Site: "demo", Metric: "pageviews", Step: step.Name, Bucket: step.Bucket(now), Dim: "path", Value: path}]++
		}
		if err := st.Apply(context.Background(), &metric.Commit{Shard: "shard-1", First: s, Last: s, Update: u, Pos: metric.Position{Seq: s, DedupFrom: s}}); err != nil {
			b.Fatal(err)
		}
	}
	sourcetest.Fanout(b, NewSource(srv.Client(b), st), push.Config{Catalog: cat}, apply)
}
