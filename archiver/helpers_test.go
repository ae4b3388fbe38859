package archiver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/stream"
	"github.com/pulsehq/pulse/stream/local"
)

var (
	_ Source      = (*local.Log)(nil)
	_ Checkpoints = (*RedisCheckpoints)(nil)
	_ Checkpoints = (*FileCheckpoints)(nil)
)

// start is the event time the generated events begin at.
var start = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// testStores are the archive backends the end-to-end tests run against.
func testStores(t *testing.T) []struct {
	name  string
	store func(t *testing.T) archive.ObjectStore
} {
	return []struct {
		name  string
		store func(t *testing.T) archive.ObjectStore
	}{
		{"dir", func(t *testing.T) archive.ObjectStore { return archive.NewDir(filepath.Join(t.TempDir(), "archive")) }},
		{"s3", func(t *testing.T) archive.ObjectStore {
			srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
			t.Cleanup(srv.Close)
			client := s3.New(s3.Options{
				Region:       "us-east-1",
				BaseEndpoint: aws.String(srv.URL),
				UsePathStyle: true,
				Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
			})
			if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("archive")}); err != nil {
				t.Fatalf("create bucket: %v", err)
			}
			return archive.NewS3(client, "archive", "raw")
		}},
	}
}

// env is a local stream with 4 shards, a Redis for checkpoints and the
// events put so far.
type env struct {
	log  *local.Log
	rdb  *redis.Client
	ck   *RedisCheckpoints
	rng  *rand.Rand
	sent map[string]string // id -> summary
}

func newEnv(t *testing.T, seed uint64) *env {
	t.Helper()
	l, err := local.Open(filepath.Join(t.TempDir(), "stream"), local.Config{Shards: 4, ReadWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	rdb := redistest.Start(t).Client(t)
	return &env{log: l, rdb: rdb, ck: NewRedisCheckpoints(rdb, "test"), rng: rand.New(rand.NewPCG(seed, 7)), sent: map[string]string{}}
}

func summary(ev *event.Event) string {
	return fmt.Sprintf("%s|%s|%s|%d|%s|%s", ev.ID, ev.Site, ev.Type, ev.TS, ev.UID, ev.Path)
}

// put adds n events with event times over 4 hours from start (about one in
// twenty late by up to 2 hours), in batches as ingest would.
func (e *env) put(t *testing.T, n int) {
	t.Helper()
	const span = 4 * int64(time.Hour/time.Millisecond)
	var entries []stream.Entry
	for i := 0; i < n; i++ {
		ts := start.UnixMilli() + e.rng.Int64N(span)
		if e.rng.IntN(20) == 0 {
			ts -= e.rng.Int64N(span / 2)
		}
		path := fmt.Sprintf("/p/%d", e.rng.IntN(100))
		ev := event.Event{
			ID: fmt.Sprintf("ev-%016x", e.rng.Uint64()), Site: "demo", Type: []string{"pageview", "click"}[e.rng.IntN(2)],
			TS: ts, URL: "https://example.com" + path, Path: path, UID: fmt.Sprintf("u%d", e.rng.IntN(500)),
			RT: ts + 100, Device: "desktop",
		}
		if e.rng.IntN(3) == 0 {
			ev.Props = map[string]any{"plan": "pro", "n": float64(e.rng.IntN(9))}
		}
		data, err := event.Marshal(&ev)
		if err != nil {
			t.Fatal(err)
		}
		e.sent[ev.ID] = summary(&ev)
		entries = append(entries, stream.Entry{Key: ev.PartitionKey(), Data: data})
		if len(entries) == 200 || i == n-1 {
			if _, err := e.log.Put(context.Background(), entries); err != nil {
				t.Fatal(err)
			}
			entries = nil
		}
	}
}

// caughtUp reports whether every shard's checkpoint is at the shard's tip
// with no boundary pending.
func (e *env) caughtUp(t *testing.T) bool {
	t.Helper()
	_, done := e.progress(t)
	return done
}

// progress describes every shard's checkpoint, and reports whether each is
// at the shard's tip with no boundary pending.
func (e *env) progress(t *testing.T) (at string, caughtUp bool) {
	t.Helper()
	shards, _ := e.log.Shards(context.Background())
	var b strings.Builder
	caughtUp = true
	for _, s := range shards {
		c, err := e.ck.Load(context.Background(), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s/%s+%s ", s.ID, c.Durable, e.log.Tip(s.ID), c.FlushAt)
		if c.Durable != e.log.Tip(s.ID) || c.FlushAt != "" {
			caughtUp = false
		}
	}
	return b.String(), caughtUp
}

// waitCaughtUp waits until caughtUp. Its deadline guards against a hang,
// not against a slow machine: it runs from the last time a checkpoint
// moved, so an archiver still making progress, however slowly, is waited
// for. Under -race every object costs much (most of the CPU went to the
// race detector's work on large allocations, such as each object's zstd
// encoder): 1,500 events took 11 to 19 s to catch up on
// a lightly loaded machine, with up to 11 s between two checkpoint moves,
// and a load of 10 stretched a catch-up past the 60 s the fixed deadline
// allowed. Two minutes without any move is a hang.
func (e *env) waitCaughtUp(t *testing.T, what string) {
	t.Helper()
	const stuck = 2 * time.Minute
	last, moved := "", time.Now()
	for {
		at, done := e.progress(t)
		if done {
			return
		}
		if at != last {
			last, moved = at, time.Now()
		}
		if time.Since(moved) > stuck {
			t.Fatalf("gave up waiting for %s: no checkpoint moved for %v (shard:durable/tip+flushAt %s)", what, stuck, at)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testConfig makes small objects, a small buffer (so ErrFull happens) and
// a short MaxAge (so time-triggered flushes happen between reads).
func testConfig() Config {
	return Config{
		Writer:        archive.WriterConfig{MaxBytes: 16 << 10, MaxPendingBytes: 40 << 10},
		MaxAge:        40 * time.Millisecond,
		DiscoverEvery: 50 * time.Millisecond,
		ReadLimit:     100,
		Backoff:       2 * time.Millisecond,
	}
}

// waitFor polls cond every 5ms; the deadline only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkArchive verifies the archive holds exactly the events sent, each
// once, and that no two objects of one shard and hour share a record.
func checkArchive(t *testing.T, store archive.ObjectStore, sent map[string]string) {
	t.Helper()
	ctx := context.Background()
	got := map[string]string{}
	err := archive.Read(ctx, store, start.Add(-6*time.Hour), start.Add(12*time.Hour), func(ev event.Event) error {
		if _, dup := got[ev.ID]; dup {
			t.Errorf("event %s archived twice", ev.ID)
		}
		got[ev.ID] = summary(&ev)
		return nil
	})
	if err != nil {
		t.Fatalf("read archive: %v", err)
	}
	for id, s := range sent {
		if got[id] != s {
			t.Errorf("event %s: archived %q, want %q", id, got[id], s)
		}
	}
	for id := range got {
		if _, ok := sent[id]; !ok {
			t.Errorf("event %s archived but never sent", id)
		}
	}
	if len(got) != len(sent) {
		t.Errorf("archived %d events, sent %d", len(got), len(sent))
	}

	objs, err := store.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	type group struct {
		shard string
		part  archive.Partition
	}
	byGroup := map[group][]archive.KeyInfo{}
	for _, o := range objs {
		k, err := archive.ParseKey(o.Key)
		if err != nil {
			t.Fatalf("object %s: %v", o.Key, err)
		}
		byGroup[group{k.Shard, k.Partition}] = append(byGroup[group{k.Shard, k.Partition}], k)
	}
	for g, ks := range byGroup {
		sort.Slice(ks, func(i, j int) bool { return stream.CompareSeq(ks[i].First, ks[j].First) < 0 })
		for i := 1; i < len(ks); i++ {
			if stream.CompareSeq(ks[i].First, ks[i-1].Last) <= 0 {
				t.Errorf("shard %s hour %s: objects %s-%s and %s-%s overlap", g.shard, g.part.Prefix(), ks[i-1].First, ks[i-1].Last, ks[i].First, ks[i].Last)
			}
		}
	}
	t.Logf("%d events in %d objects", len(got), len(objs))
}
