package aggregator

import (
	"testing"
	"time"

	"github.com/pulsehq/pulse/stream"
)

// FuzzFold feeds arbitrary record payloads through decode, dedup and
// combine: nothing may panic, every record gets exactly one outcome, and
// the update counts only what was aggregated.
func FuzzFold(f *testing.F) {
	f.Add([]byte(`{"id":"a","site":"s","type":"pageview","ts":1764258000123,"rt":1764258000200,"path":"/x","uid":"u"}`))
	f.Add([]byte(`{"id":"b","site":"s","type":"click","ts":-5,"rt":9223372036854775807,"props":{"target":1.5}}`))
	f.Add([]byte(`not json`))
	cat := testCatalog(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := New(newMemSource(1), newMemStore(1), Config{Catalog: cat})
		if err != nil {
			t.Fatal(err)
		}
		c := newCombiner(a.plan)
		d := newDedup(10*time.Minute, 0)
		tl := &tally{skipped: make([]int64, len(a.plan.steps))}
		for i := range 2 {
			a.fold(c, d, &stream.Record{Seq: string(rune('1' + i)), Data: data}, tl)
		}
		var n int64
		for _, v := range tl.outcome {
			n += v
		}
		if n != 2 {
			t.Fatalf("outcomes %v, want 2 records counted", tl.outcome)
		}
		u := c.update()
		if tl.outcome[0]+tl.outcome[1] == 0 && len(u.Counts) > 0 {
			t.Fatalf("nothing aggregated but counts %v", u.Counts)
		}
		if tl.outcome[0]+tl.outcome[1] > 1 {
			t.Fatalf("a repeated record aggregated twice: %v", tl.outcome)
		}
	})
}
