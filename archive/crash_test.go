package archive

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsehq/pulse/stream"
)

// checkpoint is what the test archiver persists per shard (package doc).
type checkpoint struct {
	durable string // every record through it is archived
	flushAt string // a flush boundary recorded before flushing; "" when none
}

// faultStore counts puts and fails every put after failAfter of them
// (negative: never), which stands for the process dying mid-flush.
type faultStore struct {
	ObjectStore
	failAfter int64
	puts      atomic.Int64
	created   atomic.Int64
	existed   atomic.Int64
}

var errCrash = errors.New("simulated crash")

func (f *faultStore) PutIfAbsent(ctx context.Context, key string, body []byte, ct string, meta map[string]string) (bool, error) {
	if n := f.puts.Add(1); f.failAfter >= 0 && n > f.failAfter {
		return false, errCrash
	}
	created, err := f.ObjectStore.PutIfAbsent(ctx, key, body, ct, meta)
	if created {
		f.created.Add(1)
	} else if err == nil {
		f.existed.Add(1)
	}
	return created, err
}

// crashAt says where a run dies: at the flushNo-th flush (counting from 1),
// at the given point of it.
type crashAt struct {
	flushNo int
	point   string // "before-boundary", "after-boundary", "mid-flush", "after-flush"
}

// runArchiver feeds recs (all shards interleaved) through a fresh Writer the
// way the archiver does, starting each shard after its checkpoint, flushing
// at "timing-dependent" points drawn from seed, and stopping when crash
// says. It reports whether it crashed and how many of its puts found the
// object already there.
func runArchiver(t *testing.T, store ObjectStore, recs []testRec, cps map[string]*checkpoint, seed uint64, crash crashAt) (crashed bool, existed int64) {
	t.Helper()
	ctx := context.Background()
	fs := &faultStore{ObjectStore: store, failAfter: -1}
	w := NewWriter(fs, WriterConfig{MaxBytes: 48 << 10})
	rng := rand.New(rand.NewPCG(seed, 2))
	flushes := 0
	defer func() { existed = fs.existed.Load() }()

	// flush runs steps 1 and 2 of the package doc for one shard.
	flush := func(shard string) (crashed bool) {
		flushes++
		cp := cps[shard]
		here := flushes == crash.flushNo
		if here && crash.point == "before-boundary" {
			return true
		}
		if cp.flushAt == "" {
			cp.flushAt = w.Last(shard)
		}
		if here && crash.point == "after-boundary" {
			return true
		}
		if here && crash.point == "mid-flush" {
			fs.failAfter = fs.puts.Load() + 1 // one object gets out, then death
		}
		through, err := w.Flush(ctx, shard)
		if errors.Is(err, errCrash) {
			return true
		}
		if err != nil {
			t.Fatalf("flush %s: %v", shard, err)
		}
		if through != cp.flushAt {
			t.Fatalf("flush %s through %s, want the boundary %s", shard, through, cp.flushAt)
		}
		if here && (crash.point == "after-flush" || crash.point == "mid-flush") {
			// Objects written (all, when the flush had only one),
			// checkpoint not advanced.
			return true
		}
		cp.durable, cp.flushAt = through, ""
		return false
	}

	for _, r := range recs {
		cp := cps[r.shard]
		if stream.CompareSeq(r.seq, cp.durable) <= 0 {
			continue // archived before the restart
		}
		err := w.Add(r.shard, r.seq, r.data, r.ev)
		if errors.Is(err, ErrFull) {
			if flush(r.shard) {
				return true, 0
			}
			err = w.Add(r.shard, r.seq, r.data, r.ev)
		}
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case cp.flushAt != "":
			// A recorded boundary is flushed exactly at its record.
			if r.seq == cp.flushAt && flush(r.shard) {
				return true, 0
			}
		case rng.IntN(600) == 0 || len(w.Due(time.Now())) > 0 && rng.IntN(4) == 0:
			// Timing: a timer fired, or Due noticed a cut object.
			if flush(r.shard) {
				return true, 0
			}
		}
	}
	shards := make([]string, 0, len(cps))
	for sh := range cps {
		shards = append(shards, sh)
	}
	sort.Strings(shards)
	for _, sh := range shards {
		if flush(sh) {
			return true, 0
		}
	}
	return false, 0
}

// TestCrashRebuild kills the archiver at each interesting point, restarts it
// from its checkpoints with different flush timing, and checks that the
// archive ends with every record exactly once: no gap, no duplicate, no two
// objects of a shard overlapping.
func TestCrashRebuild(t *testing.T) {
	recs := genRecords(7, 2000, 4, 4, testStart)
	cases := []struct {
		name     string
		crashes  []crashAt
		rewrites bool // objects written before a crash are put again (no-ops)
	}{
		{"no crash", nil, false},
		{"before boundary recorded", []crashAt{{3, "before-boundary"}}, false},
		{"after boundary recorded", []crashAt{{3, "after-boundary"}}, false},
		{"mid flush", []crashAt{{3, "mid-flush"}}, true},
		{"after flush before checkpoint", []crashAt{{3, "after-flush"}}, true},
		{"mid flush twice", []crashAt{{5, "mid-flush"}, {1, "mid-flush"}}, true},
		{"after flush, then after boundary", []crashAt{{8, "after-flush"}, {2, "after-boundary"}}, true},
		{"mid flush late", []crashAt{{12, "mid-flush"}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // the runs mostly wait for fsync
			store := NewDir(filepath.Join(t.TempDir(), "a"))
			cps := map[string]*checkpoint{}
			for _, r := range recs {
				cps[r.shard] = &checkpoint{}
			}
			var rewrites int64
			for i, c := range tc.crashes {
				crashed, existed := runArchiver(t, store, recs, cps, uint64(10+i), c)
				if !crashed {
					t.Fatalf("run %d finished without reaching crash point %+v", i, c)
				}
				rewrites += existed
			}
			crashed, existed := runArchiver(t, store, recs, cps, 99, crashAt{})
			if crashed {
				t.Fatal("final run crashed")
			}
			rewrites += existed
			if (rewrites > 0) != tc.rewrites {
				t.Fatalf("%d puts found their object already written, want rewrites=%v", rewrites, tc.rewrites)
			}
			objs, err := store.List(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			assertDisjoint(t, objs)
			assertSameRecords(t, checkObjects(t, store, objs), recs)
		})
	}
}

// assertDisjoint fails when two objects of one shard and hour cover
// overlapping seq ranges: a record archived twice under different cuts.
func assertDisjoint(t *testing.T, objs []ObjectInfo) {
	t.Helper()
	type span struct{ first, last, key string }
	by := map[string][]span{}
	for _, o := range objs {
		info, err := ParseKey(o.Key)
		if err != nil {
			t.Fatal(err)
		}
		k := info.Partition.Prefix() + info.Shard
		by[k] = append(by[k], span{info.First, info.Last, o.Key})
	}
	for _, spans := range by {
		sort.Slice(spans, func(i, j int) bool { return stream.CompareSeq(spans[i].first, spans[j].first) < 0 })
		for i := 1; i < len(spans); i++ {
			if stream.CompareSeq(spans[i].first, spans[i-1].last) <= 0 {
				t.Fatalf("overlapping objects:\n%s\n%s", spans[i-1].key, spans[i].key)
			}
		}
	}
}
