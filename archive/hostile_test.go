package archive

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestWriterClientTSDoesNotChoosePartitions archives events whose ts a
// hostile client spread from 1970 to 3000, received within a few minutes:
// a flush writes objects per receive hour, so at most two per shard (the
// minutes may straddle an hour), not one per ts hour.
func TestWriterClientTSDoesNotChoosePartitions(t *testing.T) {
	const shards, n = 4, 500
	lo := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	hi := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	cases := []struct {
		name string
		rt0  time.Time // receive time of the first event; the rest follow over 4 minutes
	}{
		{"inside an hour", testStart.Add(10 * time.Minute)},
		{"straddling an hour", testStart.Add(58 * time.Minute)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs := genRecords(3, n, shards, 1, testStart)
			for i := range recs {
				recs[i].ev.TS = lo + (hi-lo)/n*int64(i)
				recs[i].ev.RT = tc.rt0.Add(4 * time.Minute * time.Duration(i) / n).UnixMilli()
			}
			store := NewDir(filepath.Join(t.TempDir(), "a"))
			reg := prometheus.NewRegistry()
			w := NewWriter(store, WriterConfig{Registerer: reg})
			for _, r := range recs {
				if err := w.Add(r.shard, r.seq, r.data, r.ev); err != nil {
					t.Fatal(err)
				}
			}
			flushAll(t, w, recs)
			objs, err := AllObjects(context.Background(), store)
			if err != nil {
				t.Fatal(err)
			}
			assertSameRecords(t, checkObjects(t, store, objs), recs)
			hours := map[Partition]bool{}
			for _, o := range objs {
				k, _ := ParseKey(o.Key)
				hours[k.Partition] = true
			}
			t.Logf("%d events with ts 1970..3000: %d objects in %d hour directories", n, len(objs), len(hours))
			if len(objs) > 2*shards || len(hours) > 2 {
				t.Fatalf("%d objects in %d hours, want at most %d objects in 2 hours", len(objs), len(hours), 2*shards)
			}
			if got := flushObjectsMax(t, reg); got > 2 {
				t.Fatalf("pulse_archive_flush_objects saw a flush of more than %v objects", got)
			}
		})
	}
}

// flushObjectsMax returns the smallest histogram bound holding every
// observed flush of pulse_archive_flush_objects.
func flushObjectsMax(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "pulse_archive_flush_objects" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() == 0 {
			t.Fatal("no flush observed")
		}
		for _, b := range h.GetBucket() {
			if b.GetCumulativeCount() == h.GetSampleCount() {
				return b.GetUpperBound()
			}
		}
		return 1e9
	}
	t.Fatal("pulse_archive_flush_objects not registered")
	return 0
}
