package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pulsehq/pulse/stream"
)

// segments returns the segment files of shard 0, oldest first.
func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "shard-000000", "*.seg"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no segments in %s: %v", dir, err)
	}
	return m
}

// TestTornTail damages the last record of the last segment in every way a
// crash or a bad sector can (cut at each offset inside it, each byte
// flipped) and checks that recovery keeps exactly the records before it
// and that the next put takes its place.
func TestTornTail(t *testing.T) {
	tests := []struct {
		name    string
		segment int64
	}{
		{"inside a segment", 1 << 20},
		{"alone in its segment", 1},
	}
	const acked = 9
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Shards: 1, SegmentBytes: tt.segment}
			l := openT(t, dir, cfg)
			for i := range acked {
				put(t, l, entries("k"+strconv.Itoa(i), 1))
			}
			torn := []stream.Entry{entry("t")} // small: every offset is a case
			put(t, l, torn)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			files := segmentFiles(t, dir)
			last := files[len(files)-1]
			orig, err := os.ReadFile(last)
			if err != nil {
				t.Fatal(err)
			}
			before := int64(len(orig) - recordSize(torn[0].Key, torn[0].Data))
			if before < 0 || (len(files) > 1) != (before == 0) {
				t.Fatalf("last segment of %d bytes does not end with the last record", len(orig))
			}
			type damage struct {
				name string
				data []byte
			}
			var cases []damage
			for off := before; off < int64(len(orig)); off++ {
				cases = append(cases, damage{"cut at " + strconv.FormatInt(off, 10), orig[:off]})
				flipped := append([]byte(nil), orig...)
				flipped[off] ^= 0x5a
				cases = append(cases, damage{"flip at " + strconv.FormatInt(off, 10), flipped})
			}
			// A cut followed by zeros, as a file system may leave after
			// a crash.
			for off := before; off < int64(len(orig)); off++ {
				cases = append(cases, damage{"cut at " + strconv.FormatInt(off, 10) + " + zeros", append(append([]byte(nil), orig[:off]...), make([]byte, 100)...)})
			}
			for _, c := range cases {
				if err := os.WriteFile(last, c.data, 0o644); err != nil {
					t.Fatal(err)
				}
				l, err := Open(dir, cfg)
				if err != nil {
					t.Fatalf("%s: open: %v", c.name, err)
				}
				if tip := l.Tip("shard-000000"); tip != strconv.Itoa(acked) {
					l.Close()
					t.Fatalf("%s: tip %s, want %d", c.name, tip, acked)
				}
				recs := checkShard(t, l, "shard-000000", 1)
				if len(recs) != acked {
					t.Fatalf("%s: %d records, want %d", c.name, len(recs), acked)
				}
				res := put(t, l, entries("after", 1))
				if res[0].Seq != strconv.Itoa(acked+1) {
					t.Fatalf("%s: next put got seq %s, want %d", c.name, res[0].Seq, acked+1)
				}
				checkShard(t, l, "shard-000000", 1)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				// Undo the put after recovery for the next case.
				for _, f := range segmentFiles(t, dir) {
					if f > last {
						os.Remove(f)
					}
				}
			}
		})
	}
}

// TestCorruptSealedSegment checks that damage inside a sealed segment is
// reported by Read, found at open or only later, and never skipped.
func TestCorruptSealedSegment(t *testing.T) {
	tests := []struct {
		name      string
		afterOpen bool
		cut       bool
	}{
		{"flipped byte found at open", false, false},
		{"flipped byte found at read", true, false},
		{"truncated sealed segment", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Shards: 1, SegmentBytes: 400}
			l := openT(t, dir, cfg)
			put(t, l, entries("x", 40))
			files := segmentFiles(t, dir)
			if len(files) < 3 {
				t.Fatalf("want several segments, got %d", len(files))
			}
			first, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			recLen, err := recordLen(first)
			if err != nil {
				t.Fatal(err)
			}
			damage := func() {
				if tt.cut {
					if err := os.Truncate(files[0], int64(recLen)+3); err != nil {
						t.Fatal(err)
					}
					return
				}
				f, err := os.OpenFile(files[0], os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				// A byte of the second record's data.
				if _, err := f.WriteAt([]byte{first[recLen+headerSize+fixedBody+3] ^ 1}, int64(recLen+headerSize+fixedBody+3)); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
			if tt.afterOpen {
				damage()
			} else {
				l.Close()
				damage()
				l = openT(t, dir, cfg)
			}
			ctx := context.Background()
			b, err := l.Read(ctx, "shard-000000", "", 100)
			if err == nil {
				if len(b.Records) != 1 || b.Records[0].Seq != "1" {
					t.Fatalf("first read: %d records, want only record 1", len(b.Records))
				}
				_, err = l.Read(ctx, "shard-000000", "1", 100)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read over the damage: %v, want ErrCorrupt", err)
			}
			// Past the damaged segment, reads work.
			b, err = l.Read(ctx, "shard-000000", strconv.FormatUint(segBase(t, files[1])-1, 10), 100)
			if err != nil || len(b.Records) == 0 {
				t.Fatalf("read past the damaged segment: %d records, %v", len(b.Records), err)
			}
		})
	}
}

func segBase(t *testing.T, path string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(filepath.Base(path)[:20], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
