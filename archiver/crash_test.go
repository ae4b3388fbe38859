package archiver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsehq/pulse/archive"
)

// world stands for one archiver process. When it dies (a crash), every
// later put and checkpoint call fails and Run's context is cancelled, so
// nothing the process does after the crash point reaches storage, not even
// its graceful-stop flush.
type world struct {
	dead   atomic.Bool
	cancel context.CancelFunc

	failAfterPuts int64 // die at this put (mid-flush); <0: never
	dieAtFlushAt  int64 // die right after the n-th save of a boundary (between FlushAt and Flush); 0: never
	dieAtDurable  int64 // die right after the n-th save of a durable position; 0: never

	puts, flushAts, durables, existed atomic.Int64
}

func (w *world) die() {
	w.dead.Store(true)
	w.cancel()
}

var errCrash = errors.New("simulated crash")

type crashStore struct {
	archive.ObjectStore
	w *world
}

func (s crashStore) PutIfAbsent(ctx context.Context, key string, body []byte, ct string, meta map[string]string) (bool, error) {
	if s.w.dead.Load() {
		return false, errCrash
	}
	if n := s.w.puts.Add(1); s.w.failAfterPuts >= 0 && n > s.w.failAfterPuts {
		s.w.die()
		return false, errCrash
	}
	created, err := s.ObjectStore.PutIfAbsent(ctx, key, body, ct, meta)
	if err == nil && !created {
		s.w.existed.Add(1)
	}
	return created, err
}

type crashCheckpoints struct {
	Checkpoints
	w *world
}

func (c crashCheckpoints) Load(ctx context.Context, shard string) (Checkpoint, error) {
	if c.w.dead.Load() {
		return Checkpoint{}, errCrash
	}
	return c.Checkpoints.Load(ctx, shard)
}

func (c crashCheckpoints) Save(ctx context.Context, shard string, ck Checkpoint) error {
	if c.w.dead.Load() {
		return errCrash
	}
	if err := c.Checkpoints.Save(ctx, shard, ck); err != nil {
		return err
	}
	if ck.FlushAt != "" {
		if c.w.flushAts.Add(1) == c.w.dieAtFlushAt {
			c.w.die()
		}
	} else if c.w.durables.Add(1) == c.w.dieAtDurable {
		c.w.die()
	}
	return nil
}

// TestCrashRestart runs archivers that die at random points: between
// saving a flush boundary and flushing, in the middle of a flush (after N
// puts), right after a flush, at a random instant, or are stopped
// gracefully; events keep arriving between runs. Each new run starts from
// the checkpoints with a fresh writer. In the end the archive must hold
// every event exactly once, in objects that do not overlap.
func TestCrashRestart(t *testing.T) {
	// Every mode twice on disk, once on S3 (slower through HTTP). The
	// crash points are early enough to be reached in every round.
	rounds := map[string]int{"dir": 10, "s3": 5}
	for _, tc := range testStores(t) {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 11)
			store := tc.store(t)
			rng := rand.New(rand.NewPCG(42, 43))
			modes := []string{"after-boundary", "mid-flush", "after-flush", "random-time", "graceful"}
			var rewrites int64
			crashes := map[string]int{}
			for round := range rounds[tc.name] {
				e.put(t, 250)
				mode := modes[round%len(modes)]
				ctx, cancel := context.WithCancel(context.Background())
				w := &world{cancel: cancel, failAfterPuts: -1}
				switch mode {
				case "after-boundary":
					w.dieAtFlushAt = 1 + rng.Int64N(2)
				case "mid-flush":
					w.failAfterPuts = 1 + rng.Int64N(3)
				case "after-flush":
					w.dieAtDurable = 1 + rng.Int64N(3)
				case "random-time":
					timer := time.AfterFunc(time.Duration(rng.Int64N(int64(60*time.Millisecond))), w.die)
					defer timer.Stop()
				case "graceful":
					timer := time.AfterFunc(time.Duration(rng.Int64N(int64(150*time.Millisecond))), cancel)
					defer timer.Stop()
				}
				a := New(e.log, crashStore{store, w}, crashCheckpoints{e.ck, w}, testConfig())
				done := make(chan error, 1)
				go func() { done <- a.Run(ctx) }()
				waitFor(t, fmt.Sprintf("round %d (%s) to end", round, mode), func() bool {
					return ctx.Err() != nil || e.caughtUp(t)
				})
				if w.dead.Load() {
					crashes[mode]++
				} else if mode != "random-time" && mode != "graceful" {
					// Each of the 4 shards has new records, so each
					// saves a boundary, puts an object and saves a
					// position before the archive catches up.
					t.Errorf("round %d (%s): the crash point was never reached", round, mode)
				}
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("round %d: Run: %v", round, err)
				}
				rewrites += w.existed.Load()
			}
			// A last run without faults finishes the job.
			a := New(e.log, store, e.ck, testConfig())
			stop := run(t, a)
			e.waitCaughtUp(t, "final run caught up")
			stop()
			checkArchive(t, store, e.sent)
			t.Logf("crashes by mode %v; %d objects found already written on restart", crashes, rewrites)
		})
	}
}
