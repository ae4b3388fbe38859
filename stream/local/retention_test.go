package local

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsehq/pulse/stream"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ms atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ms.Store(1764258000000)
	return c
}
func (c *fakeClock) now() time.Time      { return time.UnixMilli(c.ms.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func oldest(l *Log, shard string) uint64 { return l.byID[shard].view().oldest }
func segCount(l *Log, shard string) int {
	s := l.byID[shard]
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.segs)
}

func TestRetentionByAge(t *testing.T) {
	tests := []struct {
		name        string
		segment     int64
		wantDeleted bool
	}{
		{"sealed segments go", 300, true},
		{"the active segment stays", 1 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			clock := newFakeClock()
			cfg := Config{Shards: 1, SegmentBytes: tt.segment, RetentionAge: time.Hour, Now: clock.now, ReadWait: time.Millisecond}
			l := openT(t, dir, cfg)
			const shard = "shard-000000"
			put(t, l, entries("old", 30))
			clock.add(59 * time.Minute)
			if err := l.enforceRetention(); err != nil {
				t.Fatal(err)
			}
			if oldest(l, shard) != 1 {
				t.Fatal("deleted records younger than RetentionAge")
			}
			put(t, l, entries("new", 30))
			clock.add(2 * time.Minute)
			if err := l.enforceRetention(); err != nil {
				t.Fatal(err)
			}
			first := oldest(l, shard)
			if (first > 1) != tt.wantDeleted {
				t.Fatalf("oldest retained seq %d, want deleted=%v", first, tt.wantDeleted)
			}
			recs := checkShard(t, l, shard, first)
			cutoff := clock.now().Add(-time.Hour).UnixMilli()
			s := l.byID[shard]
			s.mu.RLock()
			for _, g := range s.segs[:len(s.segs)-1] {
				if g.lastMs < cutoff {
					t.Errorf("kept sealed segment %d whose newest record is older than RetentionAge", g.base)
				}
			}
			s.mu.RUnlock()
			if len(recs) < 30 || recs[len(recs)-1].Seq != "60" {
				t.Fatalf("new records lost: %d kept, last %s", len(recs), recs[len(recs)-1].Seq)
			}
			if !tt.wantDeleted {
				return
			}
			// A reader from before retention is told it lost records.
			b, err := l.Read(context.Background(), shard, "1", 5)
			if err != nil || !b.Trimmed || b.Records[0].Seq != strconv.FormatUint(first, 10) {
				t.Fatalf("read after deleted seq: trimmed=%v err=%v", b.Trimmed, err)
			}
			b, err = l.Read(context.Background(), shard, strconv.FormatUint(first-1, 10), 5)
			if err != nil || b.Trimmed || b.Records[0].Seq != strconv.FormatUint(first, 10) {
				t.Fatalf("read right before the oldest: trimmed=%v err=%v", b.Trimmed, err)
			}
			// Sequence numbers go on after a reopen.
			l.Close()
			l = openT(t, dir, cfg)
			if oldest(l, shard) != first {
				t.Fatalf("oldest %d after reopen, want %d", oldest(l, shard), first)
			}
			if res := put(t, l, entries("z", 1)); res[0].Seq != "61" {
				t.Fatalf("seq %s after retention and reopen, want 61", res[0].Seq)
			}
		})
	}
}

func TestRetentionBySize(t *testing.T) {
	clock := newFakeClock()
	l := openT(t, t.TempDir(), Config{Shards: 3, SegmentBytes: 400, RetentionBytes: 3000, Now: clock.now, ReadWait: time.Millisecond})
	for i := range 20 {
		put(t, l, entries("s"+strconv.Itoa(i), 10))
		clock.add(time.Second)
	}
	before := l.totalBytes()
	if before <= 3000 {
		t.Fatalf("only %d bytes written", before)
	}
	type segInfo struct {
		shard   string
		base    uint64
		firstMs int64
	}
	var sealed []segInfo
	for i := range 3 {
		s := l.shards[i]
		s.mu.RLock()
		for _, g := range s.segs[:len(s.segs)-1] {
			sealed = append(sealed, segInfo{s.id, g.base, g.firstMs})
		}
		s.mu.RUnlock()
	}
	if err := l.enforceRetention(); err != nil {
		t.Fatal(err)
	}
	if after := l.totalBytes(); after > 3000 {
		t.Fatalf("%d bytes after retention, cap 3000", after)
	}
	// Oldest first: every deleted segment started no later than every
	// sealed segment kept.
	newestDeleted, oldestKept := int64(0), int64(1<<62)
	for _, g := range sealed {
		if g.base < oldest(l, g.shard) {
			newestDeleted = max(newestDeleted, g.firstMs)
		} else {
			oldestKept = min(oldestKept, g.firstMs)
		}
	}
	if newestDeleted == 0 {
		t.Fatal("nothing deleted")
	}
	if newestDeleted > oldestKept {
		t.Fatalf("deleted a segment from %d while keeping one from %d", newestDeleted, oldestKept)
	}
	for i := range 3 {
		shard := ShardID(i)
		if segCount(l, shard) == 0 {
			t.Fatalf("%s lost its active segment", shard)
		}
		checkShard(t, l, shard, oldest(l, shard))
	}
	// With a cap below the active segments, only they remain.
	l.cfg.RetentionBytes = 1
	if err := l.enforceRetention(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if n := segCount(l, ShardID(i)); n != 1 {
			t.Fatalf("%s: %d segments, want only the active one", ShardID(i), n)
		}
	}
	if res := put(t, l, entries("after", 30)); len(res) != 30 {
		t.Fatal("put after retention")
	}
}

func TestRunStops(t *testing.T) {
	l := openT(t, t.TempDir(), Config{Shards: 1, RetentionEvery: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestRetentionUnderReaders deletes segments while readers are inside
// them: readers must move on (Trimmed) without errors or disorder.
func TestRetentionUnderReaders(t *testing.T) {
	l := openT(t, t.TempDir(), Config{Shards: 1, SegmentBytes: 1 << 10, RetentionBytes: 4 << 10, ReadWait: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	trimmed := make([]bool, 3)
	for r := range 3 {
		wg.Go(func() {
			after := ""
			for ctx.Err() == nil {
				b, err := l.Read(ctx, "shard-000000", after, 3)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("read: %v", err)
					}
					return
				}
				trimmed[r] = trimmed[r] || b.Trimmed
				for _, rec := range b.Records {
					if !b.Trimmed && rec.Seq != nextSeq(after) || stream.CompareSeq(rec.Seq, after) <= 0 {
						t.Errorf("seq %s after %s (trimmed %v)", rec.Seq, after, b.Trimmed)
						return
					}
					if !bytes.Equal(rec.Data, dataFor(rec.Key)) {
						t.Errorf("seq %s: bad data", rec.Seq)
						return
					}
					after = rec.Seq
				}
				time.Sleep(100 * time.Microsecond) // fall behind
			}
		})
	}
	for i := range 300 {
		put(t, l, entries("r"+strconv.Itoa(i), 3))
		if i%10 == 0 {
			if err := l.enforceRetention(); err != nil {
				t.Fatal(err)
			}
		}
	}
	cancel()
	wg.Wait()
	if oldest(l, "shard-000000") == 1 {
		t.Fatal("retention deleted nothing")
	}
	t.Logf("readers told of trimming: %v", trimmed)
}
