package systemtest

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/internal/kinesistest"
	"github.com/pulsehq/pulse/internal/redistest"
)

// TestRolesKilled runs each role as its own process, as a fleet does:
// ingest, aggregate, push and archive on a Kinesis stream (kinesis-local),
// one redis-server (AOF) and an S3 archive (gofakes3). (The local stream
// is one process's: its directory is locked, so roles in separate
// processes need Kinesis.) Under load, each role is killed with SIGKILL in
// turn and restarted, each time only once the load has moved on. At the
// end every aggregate equals the ground truth exactly, a dashboard on the
// restarted push node follows the exact total, and the archive holds
// every acknowledged event once the restarted archiver took over the
// killed one's lease.
func TestRolesKilled(t *testing.T) {
	const bucket = "pulse-archive"
	kc := kinesisAndS3Env(t, bucket)
	stream := "kinesis://" + kinesistest.CreateStream(t, kc, 2)
	rdb := redistest.Start(t, "--appendonly", "yes").URL()
	common := []string{"--stream", stream, "--redis", rdb, "--rate-ip", "-1", "--rate-site", "-1"}
	role := func(r string, extra ...string) *server {
		return newServer(t, append(append([]string{"--roles", r}, common...), extra...)...)
	}
	nodes := []struct {
		name string
		s    *server
	}{
		{"ingest", role("ingest")},
		{"aggregate", role("aggregate")},
		{"push", role("push")},
		{"archive", role("archive", "--archive", "s3://"+bucket+"/events", "--archive-max-age", "1s", "--lease-ttl", "2s")},
	}
	ingest, push, arch := nodes[0].s, nodes[2].s, nodes[3].s

	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Second)
	defer cancel()
	now := time.Now()
	tr := newTruth()
	l := startLoad(ctx, t, func() *server { return ingest }, tr, now,
		loadConfig{Seed: uint64(now.UnixNano()), Workers: 2, Events: 10, Pause: 30 * time.Millisecond, Resend: 5, IDPrefix: "role"})
	waitFor(ctx, t, "first 200 events acknowledged", func() bool { return l.acked.Load() >= 200 })
	for _, n := range nodes {
		n.s.stop(syscall.SIGKILL)
		before := l.acked.Load()
		n.s.run()
		waitFor(ctx, t, fmt.Sprintf("200 more events acknowledged after %s was killed", n.name), func() bool {
			return l.acked.Load() >= before+200
		})
		t.Logf("%s killed and restarted; %d events acknowledged so far", n.name, l.acked.Load())
	}
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d distinct events acknowledged, %d requests resent", tr.size(), l.unanswered.Load())
	waitExact(ctx, t, func() *server { return push }, tr, now)

	// A dashboard on the restarted push node: its snapshot equals the truth.
	want := tr.total("demo", "events", "1h")
	c := push.subscribe(ctx, t, `{"op":"subscribe","id":"r","site":"demo","metric":"events","step":"1h","window":"3h"}`)
	var live liveTotal
	live.apply(t, read(ctx, t, c))
	if live.sum() != want {
		t.Errorf("dashboard on the push node: %d events, want %d", live.sum(), want)
	}

	// The restarted archiver takes the archive lease once the killed one's
	// expires (within TTL + TTL/3 of its last renew: under 3 s here), then
	// archives the backlog, cutting objects every second.
	store, err := archive.ParseURL(ctx, "s3://"+bucket+"/events")
	if err != nil {
		t.Fatal(err)
	}
	seen := waitArchived(ctx, t, store, tr, now.Add(-2*time.Hour))
	arch.stop(syscall.SIGTERM)
	t.Logf("archive holds %d distinct events", len(seen))
}

// total is the expected sum of metric's totals at step over every bucket
// of site.
func (t *truth) total(site, metric, step string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n int64
	prefix := fmt.Sprintf("%s|%s|%s|", site, metric, step)
	for k, v := range t.counts {
		if len(k) > len(prefix) && k[:len(prefix)] == prefix && k[len(k)-2:] == "||" {
			n += v
		}
	}
	return n
}
