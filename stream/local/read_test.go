package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pulsehq/pulse/stream"
)

// waitForReader returns once the one reader started on shard waits there.
// It runs in a synctest bubble: once every goroutine of the bubble is
// durably blocked, the reader is in Read's select or has returned.
func waitForReader(t *testing.T, l *Log, shard string) {
	t.Helper()
	synctest.Wait()
	if n := l.byID[shard].waiting.Load(); n != 1 {
		t.Fatalf("%d readers wait on %s, want 1", n, shard)
	}
}

func TestReadWakesOnPut(t *testing.T) { synctest.Test(t, testReadWakesOnPut) }

func testReadWakesOnPut(t *testing.T) {
	l := openT(t, t.TempDir(), Config{Shards: 2, ReadWait: time.Hour})
	e := entry("wake")
	shard := l.ShardFor(e.Key)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		b   stream.Batch
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := l.Read(ctx, shard, "", 10)
		done <- result{b, err}
	}()
	waitForReader(t, l, shard)
	put(t, l, []stream.Entry{e})
	r := <-done
	if r.err != nil {
		t.Fatalf("read: %v (not woken by the put)", r.err)
	}
	if len(r.b.Records) != 1 || r.b.Records[0].Key != e.Key {
		t.Fatalf("woken read returned %+v", r.b.Records)
	}
}

func TestReadWaitEnds(t *testing.T) {
	tests := []struct {
		name    string
		end     func(l *Log, cancel context.CancelFunc)
		wantErr error
	}{
		{"read wait passes", nil, nil},
		{"context cancelled", func(_ *Log, cancel context.CancelFunc) { cancel() }, context.Canceled},
		{"log closed", func(l *Log, _ context.CancelFunc) { l.Close() }, ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// In the bubble the read wait passes in fake time, at once.
				wait := time.Hour
				if tt.end == nil {
					wait = 10 * time.Second
				}
				l := openT(t, t.TempDir(), Config{Shards: 1, ReadWait: wait})
				put(t, l, entries("a", 2))
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan error, 1)
				var got stream.Batch
				start := time.Now()
				go func() {
					var err error
					got, err = l.Read(ctx, "shard-000000", "2", 10)
					done <- err
				}()
				if tt.end != nil {
					waitForReader(t, l, "shard-000000")
					tt.end(l, cancel)
				}
				err := <-done
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
					t.Fatalf("read: %v, want %v", err, tt.wantErr)
				}
				if waited := time.Since(start); (tt.end == nil) != (waited == wait) {
					t.Fatalf("read returned after %v with a read wait of %v", waited, wait)
				}
				if len(got.Records) != 0 || got.BehindRecords != 0 || got.Trimmed {
					t.Fatalf("batch at the tip: %+v", got)
				}
			})
		})
	}
}

func TestReadPositions(t *testing.T) {
	now := time.UnixMilli(1764258000000)
	l := openT(t, t.TempDir(), Config{Shards: 1, SegmentBytes: 200, ReadWait: time.Millisecond,
		Now: func() time.Time { return now }})
	put(t, l, entries("p", 10))
	now = now.Add(1500 * time.Millisecond)
	tests := []struct {
		name       string
		shard      string
		after      string
		limit      int
		wantSeqs   []string
		wantBehind int64
		wantErr    error
	}{
		{"from the start", "shard-000000", "", 3, []string{"1", "2", "3"}, 7, nil},
		{"across segments", "shard-000000", "2", 5, []string{"3", "4", "5", "6", "7"}, 3, nil},
		{"to the tip", "shard-000000", "8", 0, []string{"9", "10"}, 0, nil},
		{"at the tip", "shard-000000", "10", 5, nil, 0, nil},
		{"beyond the tip", "shard-000000", "11", 5, nil, 0, ErrBeyondTip},
		{"leading zero", "shard-000000", "01", 5, nil, 0, errAny},
		{"not a number", "shard-000000", "x", 5, nil, 0, errAny},
		{"unknown shard", "shard-000009", "", 5, nil, 0, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := l.Read(context.Background(), tt.shard, tt.after, tt.limit)
			if tt.wantErr != nil {
				if err == nil || (tt.wantErr != errAny && !errors.Is(err, tt.wantErr)) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var seqs []string
			for _, r := range b.Records {
				seqs = append(seqs, r.Seq)
			}
			if fmt.Sprint(seqs) != fmt.Sprint(tt.wantSeqs) || b.BehindRecords != tt.wantBehind {
				t.Fatalf("seqs %v behind %d, want %v behind %d", seqs, b.BehindRecords, tt.wantSeqs, tt.wantBehind)
			}
			if len(seqs) > 0 && b.BehindMillis != 1500 {
				t.Fatalf("behind %dms, want 1500", b.BehindMillis)
			}
		})
	}
}

var errAny = errors.New("any error")

// TestReadFrom: ReadFrom reads from a record inclusive, as the dedup
// rebuild of the aggregator needs.
func TestReadFrom(t *testing.T) {
	l := openT(t, t.TempDir(), Config{Shards: 1, SegmentBytes: 200, ReadWait: time.Millisecond})
	put(t, l, entries("f", 5))
	tests := []struct {
		from     string
		wantSeqs []string
		wantErr  bool
	}{
		{"", []string{"1", "2", "3"}, false},
		{"1", []string{"1", "2", "3"}, false},
		{"4", []string{"4", "5"}, false},
		{"5", []string{"5"}, false},
		{"6", nil, false},
		{"0", nil, true},
		{"x", nil, true},
	}
	for _, tt := range tests {
		b, err := l.ReadFrom(context.Background(), "shard-000000", tt.from, 3)
		if (err != nil) != tt.wantErr {
			t.Fatalf("ReadFrom(%q): err %v, want error %v", tt.from, err, tt.wantErr)
		}
		var seqs []string
		for _, r := range b.Records {
			seqs = append(seqs, r.Seq)
		}
		if fmt.Sprint(seqs) != fmt.Sprint(tt.wantSeqs) {
			t.Errorf("ReadFrom(%q) = %v, want %v", tt.from, seqs, tt.wantSeqs)
		}
	}
}

// TestConcurrentPutRead runs putters and several readers per shard at once
// (under -race in CI); every reader must see every record once, in order.
func TestConcurrentPutRead(t *testing.T) {
	l := openT(t, t.TempDir(), Config{Shards: 4, SegmentBytes: 16 << 10, ReadWait: 5 * time.Millisecond})
	const putters, puts = 4, 100
	ctx := context.Background()
	var putWG sync.WaitGroup
	for p := range putters {
		putWG.Go(func() {
			for i := range puts {
				es := entries(fmt.Sprintf("p%d-%d", p, i), 1+(i*7+p)%10)
				if _, err := l.Put(ctx, es); err != nil {
					t.Errorf("put: %v", err)
					return
				}
			}
		})
	}
	putsDone := make(chan struct{})
	go func() { putWG.Wait(); close(putsDone) }()
	var readWG sync.WaitGroup
	counts := make([]int, 8)
	for r := range 8 {
		shard := ShardID(r % 4)
		readWG.Go(func() {
			after := ""
			for {
				select {
				case <-putsDone:
					if after == l.Tip(shard) {
						return
					}
				default:
				}
				b, err := l.Read(ctx, shard, after, 1+r*13)
				if err != nil {
					t.Errorf("read %s: %v", shard, err)
					return
				}
				for _, rec := range b.Records {
					if want := nextSeq(after); rec.Seq != want {
						t.Errorf("%s: seq %s after %s", shard, rec.Seq, after)
						return
					}
					if !bytes.Equal(rec.Data, dataFor(rec.Key)) {
						t.Errorf("%s seq %s: bad data", shard, rec.Seq)
						return
					}
					after = rec.Seq
					counts[r]++
				}
			}
		})
	}
	readWG.Wait()
	total := 0
	for s := range 4 {
		n, _ := strconv.Atoi(l.Tip(ShardID(s)))
		total += n
		if counts[s] != n || counts[s+4] != n {
			t.Fatalf("%s: readers saw %d and %d records, tip %d", ShardID(s), counts[s], counts[s+4], n)
		}
	}
	want := 0
	for p := range putters {
		for i := range puts {
			want += 1 + (i*7+p)%10
		}
	}
	if total != want {
		t.Fatalf("%d records stored, want %d", total, want)
	}
}

func nextSeq(s string) string {
	v, _ := strconv.ParseUint(s, 10, 64)
	return strconv.FormatUint(v+1, 10)
}
