package sourcetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pulsehq/pulse/push"
)

// testSnapshot: a snapshot holds every bucket of the range (0 where
// nothing was counted), the top values of a dimension in order, and the n
// of the newest entry it reflects.
func testSnapshot(t *testing.T, h Harness) {
	b0, b1, b2 := bucket(0), bucket(10*time.Second), bucket(20*time.Second)
	h.Publish(t, "demo", "pageviews", []push.DeltaPoint{total(b0, 4), path(b0, "/a", 1), path(b0, "/b", 3)})
	h.Publish(t, "demo", "pageviews", []push.DeltaPoint{total(b2, 5), path(b2, "/a", 1), path(b2, "/c", 4)})
	h.Publish(t, "demo", "pageviews", []push.DeltaPoint{total(b0, 2), path(b0, "/a", 2)})
	h.Publish(t, "demo", "clicks", []push.DeltaPoint{total(b0, 9)})
	type row struct {
		labels string
		points [][2]int64
	}
	cases := []struct {
		name     string
		from, to int64
		groupBy  string
		limit    int
		want     []row
	}{
		{name: "total", from: b2, to: b0, want: []row{{"map[]", [][2]int64{{b2, 5}, {b1, 0}, {b0, 6}}}}},
		{name: "one bucket", from: b0, to: b0 + 9_999, want: []row{{"map[]", [][2]int64{{b0, 6}}}}},
		{name: "by path", from: b2, to: b0, groupBy: "path", want: []row{
			{"map[path:/a]", [][2]int64{{b2, 1}, {b1, 0}, {b0, 3}}},
			{"map[path:/c]", [][2]int64{{b2, 4}, {b1, 0}, {b0, 0}}},
			{"map[path:/b]", [][2]int64{{b2, 0}, {b1, 0}, {b0, 3}}},
		}},
		{name: "top 2, ties by name", from: b0, to: b0, groupBy: "path", limit: 2, want: []row{
			{"map[path:/a]", [][2]int64{{b0, 3}}},
			{"map[path:/b]", [][2]int64{{b0, 3}}},
		}},
		{name: "dimension without values", from: b0, to: b0, groupBy: "device", want: []row{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, series, err := h.Source.Snapshot(ctx(t), push.SnapshotQuery{Site: "demo", Metric: "pageviews", Step: step,
				From: tc.from, To: tc.to, GroupBy: tc.groupBy, Limit: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			if n != 3 {
				t.Errorf("n = %d, want 3", n)
			}
			got := make([]row, len(series))
			for i, s := range series {
				got[i] = row{fmt.Sprint(s.Labels), s.Points}
			}
			if !slices.EqualFunc(got, tc.want, func(a, b row) bool { return a.labels == b.labels && slices.Equal(a.points, b.points) }) {
				t.Errorf("series %v, want %v", got, tc.want)
			}
		})
	}
}

func testBadQuery(t *testing.T, h Harness) {
	now := bucket(0)
	cases := []struct {
		name string
		q    push.SnapshotQuery
	}{
		{"unknown metric", push.SnapshotQuery{Metric: "nope", Step: step}},
		{"unknown step", push.SnapshotQuery{Metric: "pageviews", Step: "7s"}},
		{"unknown dimension", push.SnapshotQuery{Metric: "pageviews", Step: step, GroupBy: "color"}},
		{"unique by dimension", push.SnapshotQuery{Metric: "visitors", Step: step, GroupBy: "path"}},
		{"from after to", push.SnapshotQuery{Metric: "pageviews", Step: step, From: now + 10_000}},
		{"too many buckets", push.SnapshotQuery{Metric: "pageviews", Step: step, From: now - 10_000*push.MaxSnapshotBuckets}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Site = "demo"
			if q.To == 0 {
				q.To = now
			}
			if q.From == 0 {
				q.From = now
			}
			if _, _, err := h.Source.Snapshot(ctx(t), q); !errors.Is(err, push.ErrBadQuery) {
				t.Fatalf("err = %v, want one wrapping push.ErrBadQuery", err)
			}
		})
	}
	t.Run("most buckets", func(t *testing.T) {
		q := push.SnapshotQuery{Site: "demo", Metric: "pageviews", Step: step, From: now - 10_000*(push.MaxSnapshotBuckets-1), To: now}
		if _, s, err := h.Source.Snapshot(ctx(t), q); err != nil || len(s) != 1 || len(s[0].Points) != push.MaxSnapshotBuckets {
			t.Fatalf("snapshot of %d buckets: err %v", push.MaxSnapshotBuckets, err)
		}
	})
}

// testTrim: a trimmed log keeps its newest entries and its head; a range
// from further back starts at the oldest entry kept, which tells the hub
// it cannot replay.
func testTrim(t *testing.T, h Harness) {
	b0 := bucket(0)
	for i := range 5 {
		h.Publish(t, "demo", "pageviews", []push.DeltaPoint{total(b0, int64(i+1))})
	}
	h.Trim(t, "demo", "pageviews", 2)
	ds, err := h.Source.Range(ctx(t), "demo", "pageviews", 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].N != 4 || ds[1].N != 5 || ds[1].Points[0].Value != 15 {
		t.Fatalf("after trim: %+v, want entries 4 and 5 (value 15)", ds)
	}
	if n, err := h.Source.Last(ctx(t), "demo", "pageviews"); err != nil || n != 5 {
		t.Fatalf("Last = %d, %v; want 5", n, err)
	}
	// Counting goes on from the head, not from what the log holds.
	h.Publish(t, "demo", "pageviews", []push.DeltaPoint{total(b0, 1)})
	if n, err := h.Source.Last(ctx(t), "demo", "pageviews"); err != nil || n != 6 {
		t.Fatalf("Last after publish = %d, %v; want 6", n, err)
	}
}
