package systemtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/stream"
)

// TestArchiveUnderKill archives events spread over several hours of event
// time while the process is killed with SIGKILL mid-object; after a last
// graceful stop the archive holds exactly the accepted events, each once.
func TestArchiveUnderKill(t *testing.T) {
	s := newServer(t, "--roles", "ingest,archive")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	now := time.Now()
	seed := uint64(now.UnixNano())

	var mu sync.Mutex
	accepted := map[string]bool{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := rand.New(rand.NewPCG(seed, 7))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var lines []string
			var ids []string
			for j := 0; j < 20; j++ {
				id := fmt.Sprintf("ar-%d-%d", i, j)
				ts := now.Add(-time.Duration(r.IntN(5*3600)) * time.Second).UnixMilli()
				lines = append(lines, fmt.Sprintf(`{"id":%q,"site":"arch","type":"pageview","ts":%d,"url":"https://e.com/%d"}`, id, ts, j))
				ids = append(ids, id)
			}
			code, res, err := s.post(ctx, []byte(strings.Join(lines, "\n")), "test")
			if err != nil || code != 202 || res.Accepted != len(ids) {
				t.Errorf("collect: %d %+v %v", code, res, err)
				return
			}
			mu.Lock()
			for _, id := range ids {
				accepted[id] = true
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	kr := rand.New(rand.NewPCG(seed, 8))
	for k := 0; k < 4; k++ {
		time.Sleep(time.Duration(400+kr.IntN(800)) * time.Millisecond)
		s.stop(syscall.SIGKILL)
		s.run()
	}
	close(stop)
	<-done
	s.stop(syscall.SIGTERM) // a graceful stop flushes what is buffered

	seen := map[string]int{}
	store := archive.NewDir(filepath.Join(s.data, "archive"))
	err := archive.Read(ctx, store, now.Add(-6*time.Hour), now.Add(time.Hour), func(ev event.Event) error {
		seen[ev.ID]++
		return nil
	})
	if err != nil {
		t.Fatalf("read archive: %v", err)
	}
	var missing, dup int
	for id := range accepted {
		if seen[id] == 0 {
			missing++
		}
	}
	for id, n := range seen {
		if !accepted[id] {
			t.Errorf("archived %s, never accepted", id)
		}
		dup += n - 1
	}
	t.Logf("%d events accepted across %d starts, %d archived, %d archived twice", len(accepted), s.start, len(seen), dup)
	if missing > 0 {
		t.Fatalf("archive: %d accepted events missing", missing)
	}
	// A copy archived twice is a request resent after a kill took its
	// answer: the stream holds both copies (aggregation dedups them). At
	// most one request (20 events) is in flight per kill.
	if dup > 4*20 {
		t.Errorf("%d events archived twice: more than the requests a kill can cut", dup)
	}
	// A restart rewrote the same objects rather than new ones over the same
	// records.
	checkNoOverlap(ctx, t, store, now.Add(-6*time.Hour), now.Add(time.Hour))
}

// checkNoOverlap fails t when two archive objects of one shard and hour
// between from and to hold a common sequence number.
func checkNoOverlap(ctx context.Context, t *testing.T, store archive.ObjectStore, from, to time.Time) {
	t.Helper()
	objs, err := archive.Objects(ctx, store, from, to)
	if err != nil {
		t.Fatal(err)
	}
	type span struct{ first, last string }
	byPart := map[string][]span{}
	for _, o := range objs {
		k, err := archive.ParseKey(o.Key)
		if err != nil {
			t.Fatalf("object %s: %v", o.Key, err)
		}
		part := fmt.Sprint(k.Partition, k.Shard)
		for _, sp := range byPart[part] {
			if stream.CompareSeq(k.First, sp.last) <= 0 && stream.CompareSeq(sp.first, k.Last) <= 0 {
				t.Errorf("object %s overlaps %s..%s", o.Key, sp.first, sp.last)
			}
		}
		byPart[part] = append(byPart[part], span{k.First, k.Last})
	}
}
