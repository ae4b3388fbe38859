package systemtest

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulsehq/pulse/archive"
)

// TestArchiveHostileTS posts 500 events whose ts a client spread from 1970
// to 3000 (issue 11, item 2): the archive keeps every one, in the receive
// hour(s) they arrived in, so the objects and directories written depend on
// the shards, not on the ts values sent.
func TestArchiveHostileTS(t *testing.T) {
	s := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 500
	lo := int64(1) // ts 0 means "not sent"
	hi := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() - 1
	lines := make([]string, n)
	for i := range lines {
		ts := lo + (hi-lo)/(n-1)*int64(i)
		lines[i] = fmt.Sprintf(`{"id":"hts-%d","site":"hts","type":"pageview","ts":%d,"url":"https://e.com/%d"}`, i, ts, i)
	}
	code, res, err := s.post(ctx, []byte(strings.Join(lines, "\n")), "test")
	if err != nil || code != 202 || res.Accepted != n {
		t.Fatalf("collect: %d %+v %v", code, res, err)
	}
	s.stop(syscall.SIGTERM) // a graceful stop flushes what is buffered

	dir := filepath.Join(s.data, "archive")
	var objects, dirs int
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir() && path != dir:
			dirs++
		case strings.HasSuffix(path, ".parquet"):
			objects++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	store := archive.NewDir(dir)
	objs, err := archive.AllObjects(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	shards := map[string]bool{}
	for _, o := range objs {
		k, err := archive.ParseKey(o.Key)
		if err != nil {
			t.Fatal(err)
		}
		shards[k.Shard] = true
		err = archive.ReadObject(ctx, store, o.Key, func(r archive.Record) error {
			seen[r.Event.ID]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d events with ts 1970..3000 on %d shards: %d Parquet objects, %d directories", n, len(shards), objects, dirs)
	for i := 0; i < n; i++ {
		if id := fmt.Sprintf("hts-%d", i); seen[id] != 1 {
			t.Fatalf("event %s archived %d times, want once", id, seen[id])
		}
	}
	// One object per shard and receive hour; the post may straddle an hour
	// (two hour directories under at most two day directories).
	if maxObjects := 2 * len(shards); objects > maxObjects || dirs > 4 {
		t.Fatalf("%d objects in %d directories, want at most %d objects in 4 directories", objects, dirs, maxObjects)
	}
}
