package systemtest

import (
	"context"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/redistest"
)

// TestStalledDashboard: beside WebSocket clients that subscribe to every
// metric of both sites and never read, a dashboard that reads follows the
// exact total of the events acknowledged under load, with no gap in its
// delta sequence, and the server keeps serving queries.
func TestStalledDashboard(t *testing.T) {
	rs := redistest.Start(t)
	s := newServer(t, "--redis", rs.URL(), "--rate-ip", "-1", "--rate-site", "-1")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i := 0; i < 4; i++ {
		c, err := stallClient(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
	}
	live := s.subscribe(ctx, t, `{"op":"subscribe","id":"live","site":"demo","metric":"events","step":"1h","window":"3h"}`)
	var total liveTotal
	total.apply(t, read(ctx, t, live))

	now := time.Now()
	tr := newTruth()
	l := startLoad(ctx, t, func() *server { return s }, tr, now, loadConfig{Seed: uint64(now.UnixNano()), Workers: 4, Pause: time.Millisecond, IDPrefix: "stall"})
	for l.acked.Load() < 10000 {
		total.apply(t, read(ctx, t, live)) // reads while the load runs
	}
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	want := tr.total("demo", "events", "1h")
	for total.sum() != want {
		total.apply(t, read(ctx, t, live))
	}
	waitExact(ctx, t, func() *server { return s }, tr, now)
	t.Logf("%d events acknowledged; the live dashboard reached %d for demo at seq %d; merges %v, resets %v, slow closes %v",
		tr.size(), total.sum(), total.seq, metricValue(t, s, "pulse_push_merges_total"),
		metricValue(t, s, "pulse_push_resets_total"), metricValue(t, s, "pulse_push_slow_closes_total"))
}
