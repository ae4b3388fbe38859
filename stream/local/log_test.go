package local

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/stream"
)

func openT(t testing.TB, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// entry makes an entry whose data can be checked from its key alone.
func entry(key string) stream.Entry {
	return stream.Entry{Key: key, Data: dataFor(key)}
}

func dataFor(key string) []byte {
	return []byte(strings.Repeat(key+"|", 1+len(key)%7))
}

func entries(prefix string, n int) []stream.Entry {
	out := make([]stream.Entry, n)
	for i := range out {
		out[i] = entry(fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

func put(t testing.TB, l *Log, es []stream.Entry) []PutResult {
	t.Helper()
	res, err := l.Put(context.Background(), es)
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	return res
}

// readAll reads a shard from after to its tip.
func readAll(t testing.TB, l *Log, shard, after string) []stream.Record {
	t.Helper()
	var out []stream.Record
	tip := l.Tip(shard)
	for stream.CompareSeq(after, tip) < 0 {
		b, err := l.Read(context.Background(), shard, after, 7)
		if err != nil {
			t.Fatalf("read %s after %q: %v", shard, after, err)
		}
		if len(b.Records) == 0 {
			t.Fatalf("read %s after %q: empty batch below tip %s", shard, after, tip)
		}
		out = append(out, b.Records...)
		after = b.Records[len(b.Records)-1].Seq
	}
	return out
}

// checkShard reads a whole shard and checks seqs run from first without a
// gap and every record's data matches its key.
func checkShard(t testing.TB, l *Log, shard string, first uint64) []stream.Record {
	t.Helper()
	recs := readAll(t, l, shard, "")
	for i, r := range recs {
		if want := strconv.FormatUint(first+uint64(i), 10); r.Seq != want {
			t.Fatalf("%s record %d: seq %s, want %s", shard, i, r.Seq, want)
		}
		if !bytes.Equal(r.Data, dataFor(r.Key)) {
			t.Fatalf("%s seq %s: data %q does not match key %q", shard, r.Seq, r.Data, r.Key)
		}
		if l.ShardFor(r.Key) != shard {
			t.Fatalf("%s seq %s: key %q belongs to %s", shard, r.Seq, r.Key, l.ShardFor(r.Key))
		}
	}
	return recs
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		shards  int
		segment int64
		batches []int
	}{
		{"one shard one entry", 1, 0, []int{1}},
		{"default shards", 0, 0, []int{1, 50, 3}},
		{"small segments", 4, 300, []int{50, 50, 1, 17}},
		{"segment smaller than a record", 3, 10, []int{20}},
		{"many shards", 16, 4096, []int{200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := time.UnixMilli(1764258000123)
			l := openT(t, t.TempDir(), Config{Shards: tt.shards, SegmentBytes: tt.segment, Now: func() time.Time { return clock }})
			want := map[string][]string{} // shard -> keys in order
			for bi, n := range tt.batches {
				es := entries(fmt.Sprintf("b%d", bi), n)
				res := put(t, l, es)
				if len(res) != n {
					t.Fatalf("%d results for %d entries", len(res), n)
				}
				for i, r := range res {
					if r.Shard != l.ShardFor(es[i].Key) {
						t.Fatalf("entry %d in %s, ShardFor says %s", i, r.Shard, l.ShardFor(es[i].Key))
					}
					want[r.Shard] = append(want[r.Shard], es[i].Key)
					if got := strconv.Itoa(len(want[r.Shard])); r.Seq != got {
						t.Fatalf("entry %d seq %s, want %s", i, r.Seq, got)
					}
				}
			}
			shards, err := l.Shards(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			wantShards := tt.shards
			if wantShards == 0 {
				wantShards = 4
			}
			if len(shards) != wantShards || shards[0].ID != "shard-000000" {
				t.Fatalf("shards %+v, want %d from shard-000000", shards, wantShards)
			}
			for _, sh := range shards {
				recs := checkShard(t, l, sh.ID, 1)
				if len(recs) != len(want[sh.ID]) {
					t.Fatalf("%s: %d records, want %d", sh.ID, len(recs), len(want[sh.ID]))
				}
				for i, r := range recs {
					if r.Key != want[sh.ID][i] || !r.Arrival.Equal(clock) {
						t.Fatalf("%s record %d: key %q arrival %v, want %q %v", sh.ID, i, r.Key, r.Arrival, want[sh.ID][i], clock)
					}
				}
				if tip := l.Tip(sh.ID); tip != strconv.Itoa(len(want[sh.ID])) && !(tip == "" && len(want[sh.ID]) == 0) {
					t.Fatalf("%s tip %q, want %d", sh.ID, tip, len(want[sh.ID]))
				}
			}
		})
	}
}

func TestReopenKeepsSeqs(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Shards: 2, SegmentBytes: 500}
	l := openT(t, dir, cfg)
	put(t, l, entries("a", 40))
	tips := map[string]string{}
	for _, id := range []string{"shard-000000", "shard-000001"} {
		tips[id] = l.Tip(id)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		l = openT(t, dir, Config{SegmentBytes: 500}) // zero shards: what is recorded
		for id, tip := range tips {
			if got := l.Tip(id); got != tip {
				t.Fatalf("round %d: %s tip %s after reopen, want %s", round, id, got, tip)
			}
		}
		res := put(t, l, entries(fmt.Sprintf("r%d", round), 20))
		for _, r := range res {
			if stream.CompareSeq(r.Seq, tips[r.Shard]) <= 0 {
				t.Fatalf("round %d: new seq %s in %s not after tip %s", round, r.Seq, r.Shard, tips[r.Shard])
			}
		}
		for id := range tips {
			checkShard(t, l, id, 1)
			tips[id] = l.Tip(id)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Config{Shards: 3})
	if _, err := Open(dir, Config{Shards: 3}); err == nil {
		t.Fatal("second open of a locked dir succeeded")
	}
	l.Close()
	tests := []struct {
		name   string
		shards int
		want   []string
	}{
		{"other count", 5, []string{"5", "3"}},
		{"default count is not recorded count", 4, []string{"4", "3"}},
		{"negative", -1, []string{"-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(dir, Config{Shards: tt.shards})
			if err == nil {
				t.Fatal("open succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

func TestPutErrors(t *testing.T) {
	l := openT(t, t.TempDir(), Config{Shards: 2})
	tests := []struct {
		name string
		es   []stream.Entry
	}{
		{"key too long", []stream.Entry{{Key: strings.Repeat("k", 257), Data: []byte("x")}}},
		{"data too long", []stream.Entry{{Key: "k", Data: make([]byte, 1<<20+1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.Put(context.Background(), tt.es); err == nil {
				t.Fatal("put succeeded")
			}
			if l.Tip("shard-000000") != "" || l.Tip("shard-000001") != "" {
				t.Fatal("a refused put stored something")
			}
		})
	}
	if res, err := l.Put(context.Background(), nil); err != nil || len(res) != 0 {
		t.Fatalf("empty put: %v %v", res, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Put(ctx, entries("c", 3)); !errors.Is(err, context.Canceled) {
		// The queue has room, so the put may have been queued before ctx
		// was seen; then it must have been stored whole.
		if err != nil {
			t.Fatalf("put with cancelled ctx: %v", err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := l.Put(context.Background(), entries("d", 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("put after close: %v, want ErrClosed", err)
	}
	if _, err := l.Read(context.Background(), "shard-000000", "", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v, want ErrClosed", err)
	}
}

// TestShardFor checks the MD5 hash ranges against big-integer arithmetic.
func TestShardFor(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 7, 64} {
		l := openT(t, t.TempDir(), Config{Shards: n})
		counts := make([]int, n)
		for i := range 2000 {
			key := fmt.Sprintf("site-%d/event-%d", i%13, i)
			got := l.ShardFor(key)
			sum := md5Big(key)
			want := new(big.Int).Div(new(big.Int).Mul(sum, big.NewInt(int64(n))), new(big.Int).Lsh(big.NewInt(1), 128))
			if got != ShardID(int(want.Int64())) {
				t.Fatalf("n=%d key %q: %s, want %s", n, key, got, ShardID(int(want.Int64())))
			}
			counts[want.Int64()]++
		}
		for i, c := range counts {
			if c < 2000/n/2 {
				t.Fatalf("n=%d: shard %d got %d of 2000 keys", n, i, c)
			}
		}
		l.Close()
	}
}

func md5Big(key string) *big.Int {
	sum := md5.Sum([]byte(key))
	return new(big.Int).SetBytes(sum[:])
}
