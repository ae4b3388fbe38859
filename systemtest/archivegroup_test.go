package systemtest

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/kinesistest"
	"github.com/pulsehq/pulse/internal/redistest"
)

// TestArchiveGroupFailover runs the archive role on two processes of a
// fleet (Kinesis, one redis-server, an S3 archive): one at a time is the
// active archiver, the other stands by. Objects are cut every second, so
// every handover falls between recorded boundaries, under load:
//
//   - the active one is killed with SIGKILL; the standby takes over; the
//     killed one comes back, under an id that sorts first, and stays a
//     standby (the lease is sticky);
//   - the active one is paused (SIGSTOP) past the lease TTL; the standby
//     takes over; the paused one wakes up still believing it is active
//     until it notices, and whatever it saves meanwhile is refused by the
//     fence;
//   - the active one is stopped with SIGTERM and hands over at once.
//
// At the end the archive holds every acknowledged event, and no object
// overlaps another: one writer per shard at a time, fenced, resuming
// exactly where the previous one cut.
func TestArchiveGroupFailover(t *testing.T) {
	const bucket = "pulse-archive"
	kc := kinesisAndS3Env(t, bucket)
	stream := "kinesis://" + kinesistest.CreateStream(t, kc, 2)
	rdb := redistest.Start(t).URL()
	common := []string{"--stream", stream, "--redis", rdb, "--rate-ip", "-1", "--rate-site", "-1"}
	ingest := newServer(t, append([]string{"--roles", "ingest"}, common...)...)
	archArgs := append([]string{"--roles", "archive", "--archive", "s3://" + bucket + "/events",
		"--archive-max-age", "1s", "--lease-ttl", "2s"}, common...)
	archs := []*server{
		newServer(t, append(archArgs, "--owner", "zz-archive-0")...),
		newServer(t, append(archArgs, "--owner", "zz-archive-1")...),
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	// active waits until exactly one of the running archivers is active
	// and returns it.
	active := func(running ...*server) *server {
		t.Helper()
		var act *server
		waitFor(ctx, t, "exactly one active archiver", func() bool {
			act = nil
			n := 0
			for _, s := range running {
				if s.metricValue(t, "pulse_archive_active") == 1 {
					act, n = s, n+1
				}
			}
			return n == 1
		})
		return act
	}
	other := func(s *server) *server {
		if s == archs[0] {
			return archs[1]
		}
		return archs[0]
	}

	now := time.Now()
	tr := newTruth()
	l := startLoad(ctx, t, func() *server { return ingest }, tr, now,
		loadConfig{Seed: uint64(now.UnixNano()), Workers: 2, Events: 10, Pause: 30 * time.Millisecond, Resend: 5, IDPrefix: "arch"})
	more := func(what string, n int64) {
		before := l.acked.Load()
		waitFor(ctx, t, fmt.Sprintf("%d more events acknowledged %s", n, what), func() bool { return l.acked.Load() >= before+n })
	}
	more("at the start", 300)

	first := active(archs...)
	first.stop(syscall.SIGKILL)
	killed := time.Now()
	second := other(first)
	if active(second) != second {
		t.Fatal("the standby did not take over")
	}
	t.Logf("active archiver killed; the standby took over after %s (lease TTL 2s); %d events acknowledged",
		time.Since(killed).Round(10*time.Millisecond), l.acked.Load())
	more("after the failover", 300)

	// Back under an id that sorts first: the member that an even split
	// would give the lease to. The lease is sticky: it stays.
	first.args = append(first.args, "--owner", "aa-restarted")
	first.run()
	more("with the killed archiver back", 200)
	if active(archs...) != second {
		t.Fatal("the archiver that came back took the lease from the active one")
	}

	second.signal(t, syscall.SIGSTOP)
	if active(first) != first {
		t.Fatal("the standby did not take over from a paused archiver")
	}
	more("while the old archiver is paused", 200)
	second.signal(t, syscall.SIGCONT)
	if active(archs...) != first {
		t.Fatal("the paused archiver did not step down when it woke")
	}
	t.Logf("paused archiver replaced; fenced saves refused after it woke: %v; %d events acknowledged",
		second.logHas(t, "fenced"), l.acked.Load())
	more("after the pause", 200)

	first.stop(syscall.SIGTERM)
	stopped := time.Now()
	if active(second) != second {
		t.Fatal("the standby did not take over after a graceful stop")
	}
	t.Logf("active archiver stopped with SIGTERM; the standby took over after %s; %d events acknowledged",
		time.Since(stopped).Round(10*time.Millisecond), l.acked.Load())
	more("after the handover", 300)

	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	store, err := archive.ParseURL(ctx, "s3://"+bucket+"/events")
	if err != nil {
		t.Fatal(err)
	}
	// The active archiver cuts an object every second: the archive soon
	// holds every acknowledged event.
	from, to := now.Add(-2*time.Hour), time.Now().Add(time.Hour)
	seen := waitArchived(ctx, t, store, tr, from)
	t.Logf("%d distinct events acknowledged, %d archived", tr.size(), len(seen))
	second.stop(syscall.SIGTERM)
	checkNoOverlap(ctx, t, store, from, to)
}

// waitArchived polls the archive until it holds every event of tr with an
// event time from from on (failing t if ctx ends first) and returns how
// many times it holds each (site/id).
func waitArchived(ctx context.Context, t *testing.T, store archive.ObjectStore, tr *truth, from time.Time) map[string]int {
	t.Helper()
	seen := map[string]int{}
	missing := -1
	for missing != 0 && ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		clear(seen)
		if err := archive.Read(ctx, store, from, time.Now().Add(time.Hour), func(ev event.Event) error {
			seen[ev.Site+"/"+ev.ID]++
			return nil
		}); err != nil {
			t.Fatalf("read archive: %v", err)
		}
		missing = 0
		for k := range tr.seen {
			if seen[k] == 0 {
				missing++
			}
		}
	}
	if missing > 0 {
		t.Errorf("archive: %d of %d acknowledged events missing", missing, tr.size())
	}
	return seen
}
