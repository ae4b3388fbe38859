package push

import (
	"testing"
	"time"
)

func pts(t int64, labels ...string) []DeltaPoint {
	var out []DeltaPoint
	for _, l := range labels {
		out = append(out, DeltaPoint{Step: "10s", Label: Label{Dim: "path", Value: l}, T: t, Add: 1})
	}
	return out
}

func testBatch(from, seq int64, p []DeltaPoint) *batch {
	return &batch{from: from, seq: seq, points: p, body: encodeBody(from, seq, p)}
}

// TestQueue: frames while there is room; folding and merging when full;
// a new key with the queue full resets the subscription, never exceeding
// the limit.
func TestQueue(t *testing.T) {
	now := time.Unix(0, 0)
	cases := []struct {
		name       string
		batches    [][]DeltaPoint
		limit      int
		wantFrames int
		wantMerged int // points in the pending delta
		wantMerges int
		wantReset  bool
	}{
		{name: "room", limit: 10, batches: [][]DeltaPoint{pts(1, "a", "b"), pts(1, "a", "b")}, wantFrames: 2},
		{name: "fold and merge", limit: 3, batches: [][]DeltaPoint{pts(1, "a", "b"), pts(1, "a", "b"), pts(1, "a")}, wantMerged: 2, wantMerges: 3},
		{name: "overflow", limit: 3, batches: [][]DeltaPoint{pts(1, "a", "b"), pts(2, "a", "b")}, wantReset: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := newQueue(c.limit)
			s := &sub{id: "s", prefix: deltaPrefix("s")}
			merges, reset := 0, false
			for i, p := range c.batches {
				m, o := q.pushDelta(s, testBatch(int64(i+1), int64(i+1), p), now)
				merges += m
				reset = reset || o
				if q.points > c.limit {
					t.Fatalf("queue holds %d points, limit %d", q.points, c.limit)
				}
			}
			if reset != c.wantReset || merges != c.wantMerges {
				t.Fatalf("reset %v merges %d, want %v %d", reset, merges, c.wantReset, c.wantMerges)
			}
			frames, merged := q.take()
			if len(frames) != c.wantFrames {
				t.Fatalf("%d frames, want %d", len(frames), c.wantFrames)
			}
			if c.wantMerged > 0 {
				if len(merged) != 1 || len(merged[0].points) != c.wantMerged || merged[0].from != 1 || merged[0].seq != int64(len(c.batches)) {
					t.Fatalf("merged %+v, want %d points over 1..%d", merged, c.wantMerged, len(c.batches))
				}
				var sum int64
				for _, p := range merged[0].points {
					sum += p.Add
				}
				if want := int64(len(c.batches[0]) + len(c.batches[1]) + len(c.batches[2])); sum != want {
					t.Fatalf("merged adds sum to %d, want %d", sum, want)
				}
			}
			if c.wantReset {
				if !s.resetPending || len(merged) != 0 {
					t.Fatalf("reset pending %v, %d merged after overflow", s.resetPending, len(merged))
				}
				if rs := q.takeResets(); len(rs) != 1 || rs[0] != s {
					t.Fatalf("takeResets = %v", rs)
				}
			}
		})
	}
}

// TestQueueLive: live query messages queue whole while the queue holds
// less than maxQueuedBytes (one larger message still goes into an empty
// queue); past it the subscription drops its messages and waits for a
// reset snapshot.
func TestQueueLive(t *testing.T) {
	big := make([]byte, maxQueuedBytes/2)
	cases := []struct {
		name       string
		sizes      []int
		wantFrames int
		wantReset  bool
	}{
		{name: "room", sizes: []int{100, 100, 100}, wantFrames: 3},
		{name: "one message over the bound into an empty queue", sizes: []int{maxQueuedBytes + 1}, wantFrames: 1},
		{name: "full", sizes: []int{len(big), len(big), 100, 100}, wantFrames: 1, wantReset: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := newQueue(10)
			s := &sub{id: "q1"}
			p := newLivePrefixes("q1")
			for _, n := range c.sizes {
				q.pushLive(s, p.delta, make([]byte, n))
				if q.bytes > maxQueuedBytes+max(c.sizes[0], 0) {
					t.Fatalf("queue holds %d bytes", q.bytes)
				}
			}
			frames, _ := q.take()
			if len(frames) != c.wantFrames {
				t.Fatalf("%d frames, want %d", len(frames), c.wantFrames)
			}
			if s.resetPending != c.wantReset {
				t.Fatalf("reset pending %v, want %v", s.resetPending, c.wantReset)
			}
			if rs := q.takeResets(); c.wantReset != (len(rs) == 1 && rs[0] == s) {
				t.Fatalf("takeResets = %v", rs)
			}
		})
	}
}
