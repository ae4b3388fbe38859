package push_test

import (
	"testing"

	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/push"
	"github.com/pulsehq/pulse/push/sourcetest"
)

func TestMemorySource(t *testing.T) {
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	sourcetest.Run(t, func(t *testing.T) sourcetest.Harness {
		src := push.NewMemorySource(cat, push.MemoryConfig{})
		return sourcetest.Harness{
			Source: src,
			Publish: func(t *testing.T, site, metric string, pts []push.DeltaPoint) {
				if _, err := src.Publish(site, metric, pts); err != nil {
					t.Fatal(err)
				}
			},
			Trim: func(_ *testing.T, site, metric string, keep int) { src.Trim(site, metric, keep) },
		}
	})
}
