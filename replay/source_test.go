package replay

import (
	"bytes"
	"context"
	"testing"

	"github.com/pulsehq/pulse/aggregator"
	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/stream"
)

var _ aggregator.Source = (*Source)(nil)

// readAll reads a shard through src from after to the stream's tip.
func readAll(t *testing.T, src *Source, shard, after string, limit int) []stream.Record {
	t.Helper()
	var out []stream.Record
	for {
		b, err := src.Read(context.Background(), shard, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Records) == 0 {
			return out
		}
		for _, r := range b.Records {
			if stream.CompareSeq(r.Seq, after) <= 0 {
				t.Fatalf("seq %s after %s: not rising", r.Seq, after)
			}
			after = r.Seq
		}
		out = append(out, b.Records...)
	}
}

// TestSourceChainsArchiveAndStream reads every shard through the chained
// source and checks it yields each record of the stream exactly once, in
// seq order, with the same event, whatever part of it is archived and
// however the archive cut it (several objects per hour and flush, several
// hours per flush); with a range, only the events in it.
func TestSourceChainsArchiveAndStream(t *testing.T) {
	cases := []struct {
		name       string
		frac       float64
		flushEvery int
		ranged     bool
		limit      int
	}{
		{"stream only", 0, 100, false, 100},
		{"half archived", 0.5, 70, false, 33},
		{"all archived", 1, 150, false, 1000},
		{"one flush", 1, 1 << 30, false, 7},
		{"range, half archived", 0.5, 90, true, 50},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 800, tc.frac, tc.flushEvery)
			var from, to int64
			if tc.ranged {
				from, to = f.base.Add(time3h(1)).UnixMilli(), f.base.Add(time3h(2)).UnixMilli()
			}
			src := f.source(from, to)
			defer src.Close()
			for shard, want := range f.records {
				got := readAll(t, src, shard, "", tc.limit)
				var wantIn []stream.Record
				for _, r := range want {
					e, _ := event.Unmarshal(r.Data)
					if !tc.ranged || e.TS >= from && e.TS < to {
						wantIn = append(wantIn, r)
					}
				}
				var gotIn []stream.Record
				for _, r := range got {
					if r.Data != nil {
						gotIn = append(gotIn, r)
					}
				}
				if len(gotIn) != len(wantIn) {
					t.Fatalf("shard %s: %d records in range, want %d", shard, len(gotIn), len(wantIn))
				}
				for i := range wantIn {
					if gotIn[i].Seq != wantIn[i].Seq {
						t.Fatalf("shard %s record %d: seq %s, want %s", shard, i, gotIn[i].Seq, wantIn[i].Seq)
					}
					a, err1 := event.Unmarshal(gotIn[i].Data)
					b, err2 := event.Unmarshal(wantIn[i].Data)
					ja, _ := event.Marshal(&a)
					jb, _ := event.Marshal(&b)
					if err1 != nil || err2 != nil || !bytes.Equal(ja, jb) {
						t.Fatalf("shard %s seq %s: event %s, want %s (%v %v)", shard, gotIn[i].Seq, ja, jb, err1, err2)
					}
				}
				// Repositioning: reading again from the middle (as the
				// aggregator does after a restart) continues right there.
				if len(want) > 10 {
					mid := want[len(want)/3].Seq
					again := readAll(t, src, shard, mid, tc.limit)
					if len(again) == 0 || stream.CompareSeq(again[0].Seq, mid) <= 0 {
						t.Fatalf("shard %s: read after %s starts at %v", shard, mid, again)
					}
				}
			}
			if c := src.Counters(); c.Tail != c.Shards || (tc.frac > 0 && c.ArchiveDone != c.ArchiveBytes) {
				t.Fatalf("counters %+v: every shard reached the stream, every archive byte was read", c)
			}
		})
	}
}

// TestSourceCaps reads shards capped at a seq (as verify does at the live
// positions), then raises the cap and reads on: every record through the
// final cap comes exactly once, none after it.
func TestSourceCaps(t *testing.T) {
	cases := []struct {
		name string
		frac float64
		caps []float64 // fractions of the shard's records
	}{
		{"inside the archive", 1, []float64{0.3, 0.6, 0.9}},
		{"across archive and stream", 0.5, []float64{0.25, 0.75, 1}},
		{"stream only", 0, []float64{0.5, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, 600, tc.frac, 40)
			src := f.source(0, 0)
			defer src.Close()
			for shard, all := range f.records {
				var got []stream.Record
				after := ""
				for _, c := range tc.caps {
					capSeq := all[int(c*float64(len(all)-1))].Seq
					if err := src.SetCap(ctx, shard, capSeq); err != nil {
						t.Fatal(err)
					}
					recs := readAll(t, src, shard, after, 17)
					for _, r := range recs {
						if stream.CompareSeq(r.Seq, capSeq) > 0 {
							t.Fatalf("shard %s: seq %s past the cap %s", shard, r.Seq, capSeq)
						}
					}
					got = append(got, recs...)
					if len(got) > 0 {
						after = got[len(got)-1].Seq
					}
				}
				final := int(tc.caps[len(tc.caps)-1] * float64(len(all)-1))
				if len(got) != final+1 {
					t.Fatalf("shard %s: %d records through the last cap, want %d", shard, len(got), final+1)
				}
				for i := range got {
					if got[i].Seq != all[i].Seq {
						t.Fatalf("shard %s record %d: seq %s, want %s", shard, i, got[i].Seq, all[i].Seq)
					}
				}
			}
		})
	}
}

// TestSourceFromOnly reads with a start and no end: the events from the
// start on, all of them, in one archive listing.
func TestSourceFromOnly(t *testing.T) {
	f := newFixture(t, 500, 0.7, 50)
	from := f.base.Add(time3h(2)).UnixMilli()
	src := f.source(from, 0)
	defer src.Close()
	for shard, all := range f.records {
		var want, got int
		for _, r := range all {
			if e, _ := event.Unmarshal(r.Data); e.TS >= from {
				want++
			}
		}
		for _, r := range readAll(t, src, shard, "", 100) {
			if r.Data != nil {
				got++
			}
		}
		if got != want {
			t.Fatalf("shard %s: %d events from %d on, want %d", shard, got, from, want)
		}
	}
}

// listHook is an archive store that runs after once its first listing
// returned: the archiver flushing while a replay starts.
type listHook struct {
	archive.ObjectStore
	after func()
	done  bool
}

func (h *listHook) List(ctx context.Context, prefix string) ([]archive.ObjectInfo, error) {
	infos, err := h.ObjectStore.List(ctx, prefix)
	if !h.done {
		h.done = true
		h.after()
	}
	return infos, err
}

// TestSourceArchiverFlushesMeanwhile has the archiver flush more of every
// shard (objects written, then the durable checkpoint saved) right after
// the source listed the archive. The source must still serve every record
// once, and count as caught up at the last one: a checkpoint newer than the
// listing once made it skip the records of the unlisted objects and wait
// forever for a position at that checkpoint, which no record served
// reaches (the replay hung in its stream phase).
func TestSourceArchiverFlushesMeanwhile(t *testing.T) {
	cases := []struct {
		name    string
		frac    float64 // archived before the replay starts
		flushTo float64 // archived by the flush after the listing
	}{
		{"the rest", 0.5, 1},
		{"part of the rest", 0.3, 0.8},
		{"first flush", 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, 600, tc.frac, 40)
			flush := func() {
				w := archive.NewWriter(f.store, archive.WriterConfig{MaxBytes: 4000, MaxPendingBytes: 1 << 30})
				for shard, recs := range f.records {
					for _, rec := range recs[int(tc.frac*float64(len(recs))):int(tc.flushTo*float64(len(recs)))] {
						ev, err := event.Unmarshal(rec.Data)
						if err != nil {
							t.Fatal(err)
						}
						if err := w.Add(shard, rec.Seq, rec.Data, ev); err != nil {
							t.Fatal(err)
						}
					}
					d, err := w.Flush(ctx, shard)
					if err != nil {
						t.Fatal(err)
					}
					if d != "" {
						f.durable[shard] = d
					}
				}
			}
			src := NewSource(f.log, SourceConfig{
				Archive: &listHook{ObjectStore: f.store, after: flush},
				Durable: func(ctx context.Context, shard string) (string, error) { return f.durable[shard], nil },
			})
			defer src.Close()
			served := map[string]string{}
			for shard, all := range f.records {
				got := readAll(t, src, shard, "", 50)
				if len(got) != len(all) {
					t.Fatalf("shard %s: %d records served, want %d", shard, len(got), len(all))
				}
				for i := range got {
					if got[i].Seq != all[i].Seq {
						t.Fatalf("shard %s record %d: seq %s, want %s", shard, i, got[i].Seq, all[i].Seq)
					}
				}
				served[shard] = got[len(got)-1].Seq
			}
			ok, err := src.caughtUp(ctx, func(_ context.Context, shard string) (string, error) { return served[shard], nil })
			if err != nil || !ok {
				t.Fatalf("caught up %v (%v) with every shard's last record applied (%v)", ok, err, served)
			}
		})
	}
}
