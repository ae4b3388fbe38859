package replay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/stream"
	"github.com/pulsehq/pulse/stream/local"
)

// fixture is a real local stream holding events spread over four hours of
// event time, and a real archive (a DirStore) holding a prefix of each
// shard, flushed in several groups as the archiver does.
type fixture struct {
	log     *local.Log
	store   *archive.DirStore
	records map[string][]stream.Record // every record, by shard
	durable map[string]string          // archived through, by shard
	base    time.Time
}

// newFixture puts n events (with some retries of the same id) and
// archives the fraction frac of each shard's records, flushing every
// flushEvery records.
func newFixture(t *testing.T, n int, frac float64, flushEvery int) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	lg, err := local.Open(filepath.Join(dir, "stream"), local.Config{Shards: 2, ReadWait: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Now().Add(-4 * time.Hour).Truncate(time.Hour)
	var entries []stream.Entry
	var sent []event.Event
	for i := 0; i < n; i++ {
		e := event.Event{
			ID: fmt.Sprintf("e%05d", i), Site: []string{"demo", "shop"}[r.IntN(2)],
			Type: []string{"pageview", "click"}[r.IntN(2)],
			TS:   base.Add(time.Duration(r.Int64N(int64(4 * time.Hour)))).UnixMilli(),
			URL:  "https://example.com/p" + fmt.Sprint(r.IntN(5)), UID: fmt.Sprintf("u%d", r.IntN(40)),
			Path: "/p" + fmt.Sprint(r.IntN(5)), Device: "desktop",
		}
		if len(sent) > 0 && r.IntN(10) == 0 {
			e = sent[r.IntN(len(sent))] // a client retry: same id and content
		}
		e.RT = time.Now().UnixMilli()
		if e.TS > e.RT {
			e.TS = e.RT
		}
		if e.Type == "click" {
			e.Props = map[string]any{"target": "t" + fmt.Sprint(r.IntN(3)), "n": float64(r.IntN(9))}
		}
		sent = append(sent, e)
		b, err := event.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, stream.Entry{Key: e.PartitionKey(), Data: b})
	}
	if _, err := lg.Put(ctx, entries); err != nil {
		t.Fatal(err)
	}
	f := &fixture{log: lg, store: archive.NewDir(filepath.Join(dir, "archive")), records: map[string][]stream.Record{}, durable: map[string]string{}, base: base}
	w := archive.NewWriter(f.store, archive.WriterConfig{MaxBytes: 4000, MaxPendingBytes: 1 << 30})
	shards, _ := lg.Shards(ctx)
	for _, sh := range shards {
		after := ""
		for {
			b, err := lg.Read(ctx, sh.ID, after, 500)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Records) == 0 {
				break
			}
			for _, rec := range b.Records {
				rec.Data = append([]byte(nil), rec.Data...)
				f.records[sh.ID] = append(f.records[sh.ID], rec)
			}
			after = b.Records[len(b.Records)-1].Seq
		}
		recs := f.records[sh.ID]
		upto := int(frac * float64(len(recs)))
		for i, rec := range recs[:upto] {
			ev, err := event.Unmarshal(rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Add(sh.ID, rec.Seq, rec.Data, ev); err != nil {
				t.Fatal(err)
			}
			if (i+1)%flushEvery == 0 || i == upto-1 {
				d, err := w.Flush(ctx, sh.ID)
				if err != nil {
					t.Fatal(err)
				}
				f.durable[sh.ID] = d
			}
		}
	}
	return f
}

func (f *fixture) source(from, to int64) *Source {
	return NewSource(f.log, SourceConfig{
		Archive: f.store, From: from, To: to,
		Durable: func(ctx context.Context, shard string) (string, error) { return f.durable[shard], nil },
	})
}

func time3h(h int) time.Duration { return time.Duration(h) * time.Hour }
