package local

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/stream"
)

// crash stops l as SIGKILL would, as far as the files go: the writer
// finishes what it took, but nothing is fsync'd beyond what the commits
// did, the journal is not recycled and the lock is released.
func crash(t *testing.T, l *Log) {
	t.Helper()
	l.closeMu.Lock()
	l.closed = true
	close(l.closing)
	close(l.stop)
	l.closeMu.Unlock()
	l.writer.Wait()
	for _, s := range l.shards {
		s.closeFiles()
	}
	for _, j := range []*journal{l.j, l.spare, l.syncing} {
		if j != nil {
			j.close()
		}
	}
	l.lock.Close()
}

// TestJournalPutsBack loses what the segments held past their last fsync,
// in the ways a crash can (writes that never reached the disk, a hole
// where a page was not written back while a later one was), and checks
// that every acknowledged record comes back from the journal, in place,
// and that the seqs go on from there.
func TestJournalPutsBack(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string, size int64)
	}{
		{"segments intact", func(*testing.T, string, int64) {}},
		{"segment emptied", func(t *testing.T, path string, _ int64) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"cut inside a record", func(t *testing.T, path string, size int64) {
			if err := os.Truncate(path, size/2+3); err != nil {
				t.Fatal(err)
			}
		}},
		{"hole before intact records", func(t *testing.T, path string, size int64) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, 4096), size/3); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Shards: 2}
			l := openT(t, dir, cfg)
			var want []PutResult
			for i := range 40 {
				want = append(want, put(t, l, entries("k"+strconv.Itoa(i), 1+i%5))...)
			}
			crash(t, l)
			for _, id := range []string{ShardID(0), ShardID(1)} {
				files, _ := filepath.Glob(filepath.Join(dir, id, "*.seg"))
				last := files[len(files)-1]
				st, err := os.Stat(last)
				if err != nil {
					t.Fatal(err)
				}
				tt.damage(t, last, st.Size())
			}
			l = openT(t, dir, cfg)
			for _, id := range []string{ShardID(0), ShardID(1)} {
				checkShard(t, l, id, 1)
			}
			tips := map[string]uint64{}
			for _, r := range want {
				seq, _ := strconv.ParseUint(r.Seq, 10, 64)
				tips[r.Shard] = max(tips[r.Shard], seq)
			}
			for id, tip := range tips {
				if got := l.Tip(id); got != strconv.FormatUint(tip, 10) {
					t.Fatalf("%s: tip %s after recovery, want %d", id, got, tip)
				}
			}
			res := put(t, l, []stream.Entry{entry("after")})
			if res[0].Seq != strconv.FormatUint(tips[res[0].Shard]+1, 10) {
				t.Fatalf("put after recovery got %s %s, want seq %d", res[0].Shard, res[0].Seq, tips[res[0].Shard]+1)
			}
		})
	}
}

// TestJournalRecycle fills the journal past its size several times, so
// that the two journal files take turns (the segments fsync'd in the
// background in between), then crashes and takes from the segments all
// that a crash could: everything written since the generation before the
// current one started, whose background sync may not have finished. Open
// must put it all back from the two journal files.
func TestJournalRecycle(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Shards: 2, JournalBytes: minJournalBytes}
	l := openT(t, dir, cfg)
	big := make([]stream.Entry, 64)
	n := 0
	sizesAt := map[uint64]map[string]int64{}
	for l.j.gen < 5 {
		if sizesAt[l.j.gen] == nil {
			sizesAt[l.j.gen] = map[string]int64{}
			for _, s := range l.shards {
				sizesAt[l.j.gen][s.id] = s.wsize
			}
		}
		for i := range big {
			key := "r" + strconv.Itoa(n)
			n++
			big[i] = stream.Entry{Key: key, Data: bytes.Repeat([]byte(key), 1000/len(key))}
		}
		put(t, l, big)
	}
	put(t, l, entries("tail", 30))
	lost := sizesAt[l.j.gen-1]
	crash(t, l)
	for id, size := range lost {
		files, _ := filepath.Glob(filepath.Join(dir, id, "*.seg"))
		if len(files) != 1 {
			t.Fatalf("%s: %d segments, want 1", id, len(files))
		}
		if err := os.Truncate(files[0], size); err != nil {
			t.Fatal(err)
		}
	}
	if gens, _ := listJournals(dir); len(gens) != 2 {
		t.Fatalf("journal files %v, want two: the current one and the one before", gens)
	}
	l = openT(t, dir, cfg)
	total := 0
	for _, id := range []string{ShardID(0), ShardID(1)} {
		recs := readAll(t, l, id, "")
		for i, r := range recs {
			if r.Seq != strconv.Itoa(i+1) {
				t.Fatalf("%s record %d: seq %s", id, i, r.Seq)
			}
			if strings.HasPrefix(r.Key, "tail-") && !bytes.Equal(r.Data, dataFor(r.Key)) {
				t.Fatalf("%s %s: data %q", id, r.Seq, r.Data)
			}
		}
		total += len(recs)
	}
	if total != n+30 {
		t.Fatalf("%d records after recovery, want %d", total, n+30)
	}
	// Again, now that recovery kept a spare: the files keep taking turns.
	for range 200 {
		put(t, l, entries("more", 50))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, cfg)
	if got := len(readAll(t, l, ShardID(0), "")) + len(readAll(t, l, ShardID(1), "")); got != total+200*50 {
		t.Fatalf("%d records after reopen, want %d", got, total+200*50)
	}
}

// TestJournalGap refuses to open a log whose journal holds a record that
// does not follow its shard's segments: the records between are lost, and
// going on would hide it.
func TestJournalGap(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Config{Shards: 1})
	put(t, l, entries("a", 3))
	crash(t, l)
	gens, err := listJournals(dir)
	if err != nil || len(gens) != 1 {
		t.Fatalf("journals %v %v", gens, err)
	}
	frame := appendFrameHeader(nil)
	frame = appendChunk(frame, 0, appendRecord(nil, 9, 1, "k", []byte("x")))
	finishFrame(frame, gens[0])
	if err := os.WriteFile(filepath.Join(dir, journalName(gens[0])), frame, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Config{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "record 9") {
		t.Fatalf("open: %v, want ErrCorrupt naming record 9", err)
	}
}

// TestOpenVersion1 opens a directory written before the journal existed
// (meta version 1, no journal file): it is read as it is, and marked
// version 2 so that an older build refuses it from then on.
func TestOpenVersion1(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Config{Shards: 2})
	put(t, l, entries("old", 20))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	gens, _ := listJournals(dir)
	for _, g := range gens {
		os.Remove(filepath.Join(dir, journalName(g)))
	}
	if err := os.WriteFile(filepath.Join(dir, metaFile), []byte(`{"version":1,"shards":2}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, Config{})
	n := len(checkShard(t, l, ShardID(0), 1)) + len(checkShard(t, l, ShardID(1), 1))
	if n != 20 {
		t.Fatalf("%d records, want 20", n)
	}
	put(t, l, entries("new", 5))
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		t.Fatal(err)
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil || m.Version != metaVersion {
		t.Fatalf("meta %s after open, want version %d", b, metaVersion)
	}
	l.Close()

	if err := os.WriteFile(filepath.Join(dir, metaFile), []byte(`{"version":3,"shards":2}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Config{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open of version 3: %v, want a refusal that says to use a newer build", err)
	}
}

// FuzzJournalFrames checks that the frame reader never panics, stops at
// the first frame it cannot trust, and that what it accepts encodes back
// to the same bytes.
func FuzzJournalFrames(f *testing.F) {
	one := appendFrameHeader(nil)
	one = appendChunk(one, 0, appendRecord(nil, 1, 1764258000123, "demo/01JDX6T8Q5", []byte(`{"site":"demo"}`)))
	one = appendChunk(one, 3, appendRecord(appendRecord(nil, 7, 1, "a", nil), 8, 2, "b", []byte("x")))
	finishFrame(one, 1)
	f.Add(one)
	f.Add(append(append([]byte(nil), one...), one[:len(one)/2]...))
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, b []byte) {
		off := 0
		err := readFrames(bytes.NewReader(b), 1, func(payload []byte) error {
			again := appendFrameHeader(nil)
			again = append(again, payload...)
			finishFrame(again, 1)
			if !bytes.Equal(again, b[off:off+len(again)]) {
				t.Fatalf("frame at %d re-encoded %x, read from %x", off, again, b[off:off+len(again)])
			}
			off += len(again)
			return forChunks(payload, func(shard int, records []byte) error {
				return forRecords(records, func(raw []byte, rec rawRecord) error {
					if !bytes.Equal(raw, appendRecord(nil, rec.Seq, rec.ArrivalMs, string(rec.Key), rec.Data)) {
						t.Fatalf("record %x does not re-encode", raw)
					}
					return nil
				})
			})
		})
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}
