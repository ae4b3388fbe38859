package sourcetest

import (
	"slices"
	"testing"
	"time"

	"github.com/pulsehq/pulse/push"
)

// next returns the next notice, failing after a generous deadline.
func next(t *testing.T, l push.Listener) push.Notice {
	t.Helper()
	select {
	case n, ok := <-l.Notices():
		if !ok {
			t.Fatal("notices closed")
		}
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no notice within 10s")
	}
	return push.Notice{}
}

// joined subscribes l to (site, metric) and waits for the confirmation.
func joined(t *testing.T, l push.Listener, site, metric string) {
	t.Helper()
	if err := l.Subscribe(ctx(t), site, metric); err != nil {
		t.Fatal(err)
	}
	if n := next(t, l); !n.Joined || n.Site != site || n.Metric != metric {
		t.Fatalf("got %+v, want the confirmation of %s/%s", n, site, metric)
	}
}

// testLive: a listener hands on, in order, the entries of the keys it is
// subscribed to, each the same as the log's, and nothing of other keys;
// unsubscribing stops a key; Close ends Notices.
func testLive(t *testing.T, h Harness) {
	l, err := h.Source.Listen(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	joined(t, l, "demo", "pageviews")
	joined(t, l, "demo", "clicks")
	b0 := bucket(0)
	h.Publish(t, "other", "pageviews", []push.DeltaPoint{total(b0, 1)}) // not subscribed
	for i := range 3 {
		h.Publish(t, "demo", "pageviews", []push.DeltaPoint{total(b0, 1), path(b0, "/a", int64(i))})
	}
	h.Publish(t, "demo", "clicks", []push.DeltaPoint{total(b0, 5)})
	logged, err := h.Source.Range(ctx(t), "demo", "pageviews", 1, 10)
	if err != nil || len(logged) != 3 {
		t.Fatalf("log %+v, %v; want 3 entries", logged, err)
	}
	for i := range 3 {
		n := next(t, l)
		if n.Joined || n.Site != "demo" || n.Metric != "pageviews" || n.Delta.N != int64(i+1) ||
			!slices.Equal(sorted(n.Delta.Points), sorted(logged[i].Points)) {
			t.Fatalf("notice %d = %+v, want entry %+v of demo/pageviews", i, n, logged[i])
		}
	}
	if n := next(t, l); n.Metric != "clicks" || n.Delta.N != 1 || n.Delta.Points[0].Value != 5 {
		t.Fatalf("got %+v, want entry 1 of demo/clicks", n)
	}

	if err := l.Unsubscribe(ctx(t), "demo", "pageviews"); err != nil {
		t.Fatal(err)
	}
	// Unsubscribe returns once the source stopped sending: what the key
	// publishes now must not come before the next clicks entry.
	h.Publish(t, "demo", "pageviews", []push.DeltaPoint{total(b0, 1)})
	h.Publish(t, "demo", "clicks", []push.DeltaPoint{total(b0, 1)})
	if n := next(t, l); n.Metric != "clicks" || n.Delta.N != 2 {
		t.Fatalf("got %+v after unsubscribing pageviews, want entry 2 of clicks", n)
	}
	joined(t, l, "demo", "pageviews") // and again

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-l.Notices():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("Notices not closed after Close")
		}
	}
}
