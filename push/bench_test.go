package push_test

import (
	"testing"
	"time"

	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/push"
	"github.com/pulsehq/pulse/push/sourcetest"
)

// BenchmarkFanout: the hub alone, on the in-memory source, so the figures
// are push's own cost (redisagg's BenchmarkFanoutRedis adds the store).
// Each iteration publishes one commit of pageviews by path: one point
// per step for the total and one for the path, as the store writes them.
func BenchmarkFanout(b *testing.B) {
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		b.Fatal(err)
	}
	src := push.NewMemorySource(cat, push.MemoryConfig{})
	now := time.Now().UnixMilli()
	publish := func(path string) {
		var pts []push.DeltaPoint
		for _, st := range cat.Steps {
			t := st.Bucket(now)
			pts = append(pts, push.DeltaPoint{Step: st.Name, T: t, Add: 1},
				push.DeltaPoint{Step: st.Name, T: t, Label: push.Label{Dim: "path", Value: path}, Add: 1})
		}
		if _, err := src.Publish("demo", "pageviews", pts); err != nil {
			b.Fatal(err)
		}
	}
	sourcetest.Fanout(b, src, push.Config{Catalog: cat}, publish)
}
