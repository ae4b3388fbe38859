package querystudy

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/event"
)

// TestDesignsAgree checks that every exact path of the study answers Q1-Q5
// and the visit count as the ground truth does, on a small site of three
// days: B's plain rows and compacted hours decoded back, and C's scan of
// a Parquet archive written through archive.Writer (with its retries,
// which the scan must drop as the aggregator does).
func TestDesignsAgree(t *testing.T) {
	small := shape{"small", 4_000, 300}
	const days = 3
	segs := truth(small, days)
	from := studyStart.UnixMilli()
	to := from + days*86_400_000
	want := fmt.Sprint(answerAll(segs, days))

	plain, compacted := map[int64]*segment{}, map[int64]*segment{}
	for h, s := range segs {
		var blob []byte
		for i := range s.ts {
			blob = appendSegmentRow(blob, s, i)
		}
		p := newSegment(h)
		if err := decodePlain(blob, p); err != nil {
			t.Fatalf("plain hour %d: %v", h, err)
		}
		plain[h] = p
		c, err := decodeCompact(compact(s))
		if err != nil {
			t.Fatalf("compact hour %d: %v", h, err)
		}
		compacted[h] = c
	}
	dir := filepath.Join(t.TempDir(), "archive")
	writeArchive(t, small, days, dir)
	sc := &archiveScanner{store: archive.NewDir(dir), rule: event.DefaultTimeRule()}
	scanned := map[int64]*segment{}
	for _, s := range sc.scan(t, from, to) {
		scanned[s.start] = s
	}
	if sc.rows <= small.eventsPerDay*days {
		t.Errorf("archive scan read %d rows, want the %d events plus their retries", sc.rows, small.eventsPerDay*days)
	}
	for _, tc := range []struct {
		name string
		segs map[int64]*segment
	}{
		{"B plain rows", plain},
		{"B compacted hours", compacted},
		{"C archive scan", scanned},
	} {
		if got := fmt.Sprint(answerAll(tc.segs, days)); got != want {
			t.Errorf("%s: answers differ from the truth\ngot  %.300s\nwant %.300s", tc.name, got, want)
		}
	}
}
