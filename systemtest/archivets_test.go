package systemtest

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/archive"
)

// attackHostileTS posts 500 events whose ts a client spread from 1970 to
// 3000 to a server archiving to DATA/archive with a short --archive-max-age:
// the archive keeps every one, in the receive hour(s) they arrived in, so
// the objects and directories they take depend on the shards, not on the
// ts values sent. Other traffic may share those objects.
func attackHostileTS(t *testing.T, ctx context.Context, s *server) string {
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

	store := archive.NewDir(filepath.Join(s.data, "archive"))
	var seen map[string]int
	var objects, dirs map[string]bool
	shards := map[string]bool{}
	for ctx.Err() == nil {
		seen, objects, dirs = map[string]int{}, map[string]bool{}, map[string]bool{}
		objs, err := archive.AllObjects(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			k, err := archive.ParseKey(o.Key)
			if err != nil {
				t.Fatal(err)
			}
			shards[k.Shard] = true
			err = archive.ReadObject(ctx, store, o.Key, func(r archive.Record) error {
				if r.Event.Site == "hts" {
					seen[r.Event.ID]++
					objects[o.Key] = true
					dirs[path.Dir(o.Key)] = true
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(seen) == n {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i := 0; i < n; i++ {
		if id := fmt.Sprintf("hts-%d", i); seen[id] != 1 {
			t.Fatalf("event %s archived %d times, want once", id, seen[id])
		}
	}
	// One object per shard and receive hour; the post may straddle an hour
	// (two hour directories).
	if maxObjects := 2 * len(shards); len(objects) > maxObjects || len(dirs) > 2 {
		t.Errorf("the events are in %d objects in %d hour directories, want at most %d objects in 2", len(objects), len(dirs), maxObjects)
	}
	return fmt.Sprintf("%d events with ts 1970..3000 were archived once each, in %d Parquet objects in %d hour directories (bound: %d objects, 2 directories)",
		n, len(objects), len(dirs), 2*len(shards))
}
