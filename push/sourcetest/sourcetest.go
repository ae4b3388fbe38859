// Package sourcetest is the conformance suite of push.Source: one set of
// tests that every implementation (push.MemorySource, redisagg.Source)
// passes, so the hub's tests on the memory source hold for Redis too; and
// Fanout, the one fan-out benchmark run on each.
package sourcetest

import (
	"cmp"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/push"
)

// Harness is one fresh, empty source over the built-in catalog
// (metric.Builtins, metric.DefaultSteps), and how to write to it.
type Harness struct {
	Source push.Source
	// Publish commits pts (Add set, T a bucket start of the current time)
	// to (site, metric) as one applied commit, which the source logs as one
	// entry.
	Publish func(t *testing.T, site, metric string, pts []push.DeltaPoint)
	// Trim drops all but the newest keep entries of the log of (site, metric).
	Trim func(t *testing.T, site, metric string, keep int)
}

// Run runs every conformance test, each on a harness of its own.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	tests := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"empty", testEmpty},
		{"log", testLog},
		{"snapshot", testSnapshot},
		{"bad query", testBadQuery},
		{"live", testLive},
		{"trim", testTrim},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newHarness(t)) })
	}
}

const step = "10s"

// bucket is the start of the 10s bucket ago before now.
func bucket(ago time.Duration) int64 {
	return metric.DefaultSteps()[0].Bucket(time.Now().Add(-ago).UnixMilli())
}

func total(t, add int64) push.DeltaPoint { return push.DeltaPoint{Step: step, T: t, Add: add} }

func path(t int64, p string, add int64) push.DeltaPoint {
	return push.DeltaPoint{Step: step, T: t, Label: push.Label{Dim: "path", Value: p}, Add: add}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func testEmpty(t *testing.T, h Harness) {
	if n, err := h.Source.Last(ctx(t), "demo", "pageviews"); err != nil || n != 0 {
		t.Fatalf("Last = %d, %v; want 0", n, err)
	}
	if ds, err := h.Source.Range(ctx(t), "demo", "pageviews", 1, 10); err != nil || len(ds) != 0 {
		t.Fatalf("Range = %+v, %v; want nothing", ds, err)
	}
	to := bucket(0)
	n, series, err := h.Source.Snapshot(ctx(t), push.SnapshotQuery{Site: "demo", Metric: "pageviews", Step: step, From: to - 50_000, To: to})
	if err != nil || n != 0 || len(series) != 1 || len(series[0].Points) != 6 {
		t.Fatalf("Snapshot = %d, %+v, %v; want n 0 and one series of 6 zero points", n, series, err)
	}
	for _, p := range series[0].Points {
		if p[1] != 0 {
			t.Fatalf("empty source has point %v", p)
		}
	}
}

// sorted orders a delta's points, which a source may write in any order.
func sorted(pts []push.DeltaPoint) []push.DeltaPoint {
	out := slices.Clone(pts)
	slices.SortFunc(out, func(a, b push.DeltaPoint) int {
		return cmp.Or(cmp.Compare(a.Step, b.Step), cmp.Compare(a.T, b.T), cmp.Compare(a.Label.Dim, b.Label.Dim), cmp.Compare(a.Label.Value, b.Label.Value))
	})
	return out
}

func withValue(p push.DeltaPoint, v int64) push.DeltaPoint { p.Value = v; return p }

// testLog: entries are numbered from 1 without gaps, each point carrying
// the bucket's new total, and Range reads them from any n.
func testLog(t *testing.T, h Harness) {
	b0, b1 := bucket(0), bucket(10*time.Second)
	h.Publish(t, "demo", "pageviews", []push.DeltaPoint{total(b0, 2), path(b0, "/a", 2)})
	h.Publish(t, "demo", "pageviews", []push.DeltaPoint{total(b0, 3), path(b0, "/a", 1), path(b0, "/b", 2)})
	h.Publish(t, "demo", "pageviews", []push.DeltaPoint{total(b1, 1), path(b1, "/a", 1)})
	h.Publish(t, "other", "pageviews", []push.DeltaPoint{total(b0, 7)})
	want := []push.Delta{
		{N: 1, Points: []push.DeltaPoint{withValue(total(b0, 2), 2), withValue(path(b0, "/a", 2), 2)}},
		{N: 2, Points: []push.DeltaPoint{withValue(total(b0, 3), 5), withValue(path(b0, "/a", 1), 3), withValue(path(b0, "/b", 2), 2)}},
		{N: 3, Points: []push.DeltaPoint{withValue(total(b1, 1), 1), withValue(path(b1, "/a", 1), 1)}},
	}
	cases := []struct {
		name        string
		from, count int64
		want        []push.Delta
	}{
		{"all", 1, 10, want},
		{"from the middle", 2, 10, want[1:]},
		{"count", 1, 2, want[:2]},
		{"past the head", 4, 10, nil},
		{"from zero", 0, 1, want[:1]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.Source.Range(ctx(t), "demo", "pageviews", tc.from, tc.count)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d entries %+v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if got[i].N != tc.want[i].N || !slices.Equal(sorted(got[i].Points), sorted(tc.want[i].Points)) {
					t.Errorf("entry %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
	for site, want := range map[string]int64{"demo": 3, "other": 1, "none": 0} {
		if n, err := h.Source.Last(ctx(t), site, "pageviews"); err != nil || n != want {
			t.Errorf("Last(%s) = %d, %v; want %d", site, n, err, want)
		}
	}
}
