package archive

import (
	"cmp"
	"context"
	"errors"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/stream"
)

var testStart = time.Date(2026, 11, 27, 13, 0, 0, 0, time.UTC)

// TestWriterRoundTrip writes several thousand events of 4 shards over
// several hours, checks every object with parquet-go's own generic reader
// (independent of the package's decoder), and reads them back with Read.
func TestWriterRoundTrip(t *testing.T) {
	recs := genRecords(1, 6000, 4, 5, testStart)
	for _, tc := range testStores(t) {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			reg := prometheus.NewRegistry()
			w := NewWriter(tc.store, WriterConfig{MaxBytes: 64 << 10, Registerer: reg})
			for i, r := range recs {
				if err := w.Add(r.shard, r.seq, r.data, r.ev); err != nil {
					t.Fatal(err)
				}
				if i%1700 == 1699 { // some flushes mid-way, as MaxAge would cause
					flushAll(t, w, recs)
				}
			}
			flushAll(t, w, recs)

			objs, err := Objects(ctx, tc.store, testStart.Add(-time.Hour), testStart.Add(7*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			got := checkObjects(t, tc.store, objs)
			if s3s, ok := tc.store.(*S3Store); ok {
				// The record count is also S3 object metadata.
				head, err := s3s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s3s.bucket), Key: aws.String(s3s.prefix + objs[0].Key)})
				if err != nil {
					t.Fatal(err)
				}
				info, _ := ParseKey(objs[0].Key)
				var n int
				for _, r := range got {
					if r.shard == info.Shard && stream.CompareSeq(r.seq, info.First) >= 0 && stream.CompareSeq(r.seq, info.Last) <= 0 && PartitionOf(r.ev.TS) == info.Partition {
						n++
					}
				}
				if head.Metadata["records"] != strconv.Itoa(n) || aws.ToString(head.ContentType) != ContentType {
					t.Fatalf("object metadata %v (%s), want records=%d", head.Metadata, aws.ToString(head.ContentType), n)
				}
			}
			assertSameRecords(t, got, recs)
			if n := metricValue(w.m.records); n != float64(len(recs)) {
				t.Errorf("records metric = %v, want %d", n, len(recs))
			}
			if n := metricValue(w.m.pending); n != 0 {
				t.Errorf("pending metric = %v after flush, want 0", n)
			}

			for _, c := range []struct{ from, to time.Time }{
				{testStart, testStart.Add(5 * time.Hour)},
				{testStart.Add(-48 * time.Hour), testStart.Add(48 * time.Hour)}, // whole days listed by day
				{testStart.Add(90 * time.Minute), testStart.Add(200*time.Minute + 17*time.Millisecond)},
				{testStart.Add(time.Hour), testStart.Add(time.Hour)},
			} {
				var want []event.Event
				for _, r := range recs {
					if r.ev.TS >= c.from.UnixMilli() && r.ev.TS < c.to.UnixMilli() {
						want = append(want, r.ev)
					}
				}
				var read []event.Event
				err := Read(ctx, tc.store, c.from, c.to, func(ev event.Event) error {
					read = append(read, ev)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				sortEvents(want)
				sortEvents(read)
				if len(read) != len(want) || !reflect.DeepEqual(read, want) {
					t.Fatalf("Read [%v, %v): %d events, want %d equal to the input", c.from, c.to, len(read), len(want))
				}
			}
		})
	}
}

// independentRow mirrors the archive columns for parquet-go's generic
// reader, written here rather than shared with the package so a schema
// mistake in the package shows up.
type independentRow struct {
	ID      string  `parquet:"id"`
	Site    string  `parquet:"site"`
	Type    string  `parquet:"type"`
	TS      int64   `parquet:"ts,timestamp(millisecond)"`
	RT      int64   `parquet:"rt,timestamp(millisecond)"`
	URL     *string `parquet:"url,optional"`
	Ref     *string `parquet:"ref,optional"`
	UID     *string `parquet:"uid,optional"`
	Path    *string `parquet:"path,optional"`
	RefHost *string `parquet:"ref_host,optional"`
	Device  *string `parquet:"device,optional"`
	Bot     bool    `parquet:"bot"`
	Props   *string `parquet:"props,optional"`
	Shard   string  `parquet:"shard"`
	Seq     string  `parquet:"seq"`

	Source         *string `parquet:"source,optional"`
	UTMSource      *string `parquet:"utm_source,optional"`
	UTMMedium      *string `parquet:"utm_medium,optional"`
	UTMCampaign    *string `parquet:"utm_campaign,optional"`
	UTMContent     *string `parquet:"utm_content,optional"`
	UTMTerm        *string `parquet:"utm_term,optional"`
	Browser        *string `parquet:"browser,optional"`
	BrowserVersion *string `parquet:"browser_version,optional"`
	OS             *string `parquet:"os,optional"`
	OSVersion      *string `parquet:"os_version,optional"`
	Country        *string `parquet:"country,optional"`
}

// checkObjects verifies each object against its key (partition, shard, seq
// range, record count in the footer) and returns every record in them.
func checkObjects(t *testing.T, store ObjectStore, objs []ObjectInfo) []testRec {
	t.Helper()
	if len(objs) == 0 {
		t.Fatal("no objects")
	}
	var out []testRec
	for _, o := range objs {
		info, err := ParseKey(o.Key)
		if err != nil {
			t.Fatal(err)
		}
		body := get(t, store, o.Key)
		if int64(len(body)) != o.Size {
			t.Fatalf("%s: listed size %d, body %d", o.Key, o.Size, len(body))
		}
		f, err := parquet.OpenFile(bytesReaderAt(body), int64(len(body)))
		if err != nil {
			t.Fatalf("%s: %v", o.Key, err)
		}
		if n, _ := f.Lookup(metaRecords); n != strconv.FormatInt(f.NumRows(), 10) {
			t.Fatalf("%s: footer records %q, rows %d", o.Key, n, f.NumRows())
		}
		rows := make([]independentRow, f.NumRows())
		r := parquet.NewGenericReader[independentRow](f)
		if n, err := r.Read(rows); n != len(rows) {
			t.Fatalf("%s: read %d of %d rows: %v", o.Key, n, len(rows), err)
		}
		r.Close()
		for i, row := range rows {
			if PartitionOf(row.RT) != info.Partition {
				t.Fatalf("%s: row rt %v outside the partition", o.Key, time.UnixMilli(row.RT).UTC())
			}
			if row.Shard != info.Shard {
				t.Fatalf("%s: row of shard %s", o.Key, row.Shard)
			}
			if (i == 0 && row.Seq != info.First) || (i == len(rows)-1 && row.Seq != info.Last) ||
				(i > 0 && stream.CompareSeq(rows[i-1].Seq, row.Seq) >= 0) {
				t.Fatalf("%s: row %d seq %s out of order or not matching the name", o.Key, i, row.Seq)
			}
			ev := event.Event{ID: row.ID, Site: row.Site, Type: row.Type, TS: row.TS, RT: row.RT, Bot: row.Bot,
				URL: deref(row.URL), Ref: deref(row.Ref), UID: deref(row.UID), Path: deref(row.Path),
				RefHost: deref(row.RefHost), Device: deref(row.Device),
				Visit: event.Visit{Source: deref(row.Source), UTMSource: deref(row.UTMSource), UTMMedium: deref(row.UTMMedium),
					UTMCampaign: deref(row.UTMCampaign), UTMContent: deref(row.UTMContent), UTMTerm: deref(row.UTMTerm),
					Browser: deref(row.Browser), BrowserVersion: deref(row.BrowserVersion), OS: deref(row.OS),
					OSVersion: deref(row.OSVersion), Country: deref(row.Country)}}
			if row.Props != nil {
				if err := jsonUnmarshal(*row.Props, &ev.Props); err != nil {
					t.Fatalf("%s: props %q: %v", o.Key, *row.Props, err)
				}
			}
			for _, s := range []*string{row.URL, row.Ref, row.UID, row.Path, row.RefHost, row.Device, row.Props} {
				if s != nil && *s == "" {
					t.Fatalf("%s: empty string stored instead of NULL", o.Key)
				}
			}
			out = append(out, testRec{shard: row.Shard, seq: row.Seq, ev: ev})
		}
	}
	return out
}

// assertSameRecords fails unless got holds each record of want exactly once.
func assertSameRecords(t *testing.T, got, want []testRec) {
	t.Helper()
	key := func(r testRec) string { return r.shard + "/" + r.seq }
	seen := make(map[string]event.Event, len(got))
	for _, r := range got {
		if _, dup := seen[key(r)]; dup {
			t.Fatalf("record %s archived twice", key(r))
		}
		seen[key(r)] = r.ev
	}
	for _, r := range want {
		ev, ok := seen[key(r)]
		if !ok {
			t.Fatalf("record %s missing from the archive", key(r))
		}
		if !reflect.DeepEqual(ev, r.ev) {
			t.Fatalf("record %s:\n got %+v\nwant %+v", key(r), ev, r.ev)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("archive has %d records, want %d", len(got), len(want))
	}
}

func flushAll(t *testing.T, w *Writer, recs []testRec) {
	t.Helper()
	shards := map[string]string{}
	for _, r := range recs {
		shards[r.shard] = ""
	}
	for sh := range shards {
		last := w.Last(sh)
		through, err := w.Flush(context.Background(), sh)
		if err != nil {
			t.Fatal(err)
		}
		if through != last {
			t.Fatalf("flush %s through %s, want %s", sh, through, last)
		}
	}
}

func sortEvents(evs []event.Event) {
	slices.SortFunc(evs, func(a, b event.Event) int { return cmp.Compare(a.ID, b.ID) })
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestWriterAddErrors(t *testing.T) {
	w := NewWriter(NewDir(t.TempDir()), WriterConfig{})
	ev := event.Event{ID: "a", Site: "s", Type: "t", TS: testStart.UnixMilli()}
	if err := w.Add("s-1", "100", nil, ev); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ shard, seq string }{
		{"", "200"},
		{"a/b", "200"},
		{".hidden", "200"},
		{"s-1", ""},
		{"s-1", "0200"},
		{"s-1", "12a"},
		{"s-1", "1" + strings.Repeat("0", SeqWidth)},
		{"s-1", "100"}, // not after the last seq
		{"s-1", "99"},
	} {
		if err := w.Add(c.shard, c.seq, nil, ev); err == nil {
			t.Errorf("Add(%q, %q) succeeded, want an error", c.shard, c.seq)
		}
	}
	if err := w.Add("s-1", "101", nil, ev); err != nil {
		t.Fatalf("a valid add after refused ones: %v", err)
	}
}

// TestWriterDue covers when a shard is reported due and the ErrFull bound.
func TestWriterDue(t *testing.T) {
	now := testStart
	clock := func() time.Time { return now }
	ev := func(ts time.Time) event.Event {
		return event.Event{ID: "x", Site: "s", Type: "t", TS: ts.UnixMilli()}
	}
	rec := make([]byte, 100)
	// One such record encodes to about 130 bytes: ten open partitions of
	// one record each stay below the bound.
	const maxPending = 3000
	w := NewWriter(NewDir(t.TempDir()), WriterConfig{MaxBytes: 1000, MaxAge: time.Minute, MaxPendingBytes: maxPending, Now: clock})
	var lastAdded string

	steps := []struct {
		name    string
		do      func() error
		wantErr error
		at      time.Duration
		want    []string
	}{
		{"empty", nil, nil, 0, nil},
		{"young object", func() error { return w.Add("a", "1", rec, ev(testStart)) }, nil, 30 * time.Second, nil},
		{"old object", nil, nil, 61 * time.Second, []string{"a"}},
		{"flushed", func() error { _, err := w.Flush(context.Background(), "a"); return err }, nil, 61 * time.Second, nil},
		{"cut by bytes", func() error {
			for i := 2; i < 12; i++ {
				if err := w.Add("b", strconv.Itoa(i), rec, ev(testStart)); err != nil {
					return err
				}
			}
			return nil
		}, nil, 62 * time.Second, []string{"b"}},
		{"raw bytes across partitions", func() error {
			for i := 0; i < 10; i++ { // 10 late events, each in its own hour
				if err := w.Add("c", strconv.Itoa(100+i), rec, ev(testStart.Add(-time.Duration(i)*time.Hour))); err != nil {
					return err
				}
			}
			return nil
		}, nil, 62 * time.Second, []string{"b", "c"}},
		{"full", func() error {
			for i := 0; i < 100; i++ {
				seq := strconv.Itoa(200 + i)
				if err := w.Add("c", seq, rec, ev(testStart)); err != nil {
					return err
				}
				lastAdded = seq
			}
			return nil
		}, ErrFull, 62 * time.Second, []string{"b", "c"}},
	}
	for _, s := range steps {
		if s.do != nil {
			if err := s.do(); !errors.Is(err, s.wantErr) {
				t.Fatalf("%s: err=%v, want %v", s.name, err, s.wantErr)
			}
		}
		now = testStart.Add(s.at)
		if got := w.Due(now); !slices.Equal(got, s.want) {
			t.Fatalf("%s: Due = %v, want %v", s.name, got, s.want)
		}
	}
	if lastAdded == "" || w.Last("c") != lastAdded {
		t.Fatalf("Last after ErrFull = %s, want %s (the refused record not added)", w.Last("c"), lastAdded)
	}
	sb := w.shard("c", false)
	if sb.pending < maxPending || sb.pending > maxPending+1000 {
		t.Fatalf("shard refused at %d encoded bytes, want from %d to one record more", sb.pending, maxPending)
	}
	if got := metricValue(w.m.pending); got != float64(sb.pending+w.shard("b", false).pending) {
		t.Fatalf("pending metric = %v, want the shards' %d+%d", got, sb.pending, w.shard("b", false).pending)
	}
	w.Drop("c")
	if got := w.Due(now); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("Due after Drop = %v", got)
	}
}

func TestPartitionKeys(t *testing.T) {
	for _, c := range []struct {
		ts    time.Time
		shard string
		first string
		last  string
		key   string
	}{
		{time.Date(2026, 11, 27, 15, 59, 59, 999e6, time.UTC), "shardId-000000000003", "49590338271490256608559692538361571095921575989136588898", "49590338271490256608559692538361571095921575989136588899",
			"dt=2026-11-27/hr=15/shardId-000000000003-000000" + "49590338271490256608559692538361571095921575989136588898-000000" + "49590338271490256608559692538361571095921575989136588899.parquet"},
		{time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC), "0", "1", "18446744073709551615",
			"dt=2026-01-02/hr=03/0-" + strings.Repeat("0", 61) + "1-" + strings.Repeat("0", 42) + "18446744073709551615.parquet"},
		{time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC), "s", "7", "9",
			"dt=1969-12-31/hr=23/s-" + strings.Repeat("0", 61) + "7-" + strings.Repeat("0", 61) + "9.parquet"},
	} {
		key := ObjectKey(PartitionOf(c.ts.UnixMilli()), c.shard, c.first, c.last)
		if key != c.key {
			t.Errorf("ObjectKey = %s\n want %s", key, c.key)
		}
		info, err := ParseKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if info.Shard != c.shard || info.First != c.first || info.Last != c.last || !info.Partition.Start().Equal(c.ts.Truncate(time.Hour)) {
			t.Errorf("ParseKey(%s) = %+v", key, info)
		}
	}
	for _, bad := range []string{"", "x.parquet", "dt=2026-11-27/hr=15/s-1-2.parquet", "dt=2026-02-30/hr=15/" + "s-" + padSeq("1") + "-" + padSeq("2") + ".parquet",
		"dt=2026-11-27/hr=24/s-" + padSeq("1") + "-" + padSeq("2") + ".parquet", "dt=2026-11-27/hr=15/s-" + padSeq("1") + "-" + padSeq("2") + ".json"} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParseKey(%q) err=%v, want ErrBadKey", bad, err)
		}
	}
}

func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// TestWriterHoldsEncoded checks that buffered records cost the writer their
// encoded size, not decoded events: 150,000 events (48 MB of stream records)
// added and not yet flushed must grow the live heap by less than a third of
// their raw bytes (about a fifth: 5 MB of pages, the values of the pages
// being filled, dictionaries). Holding them decoded took 1.8 times their
// raw bytes.
func TestWriterHoldsEncoded(t *testing.T) {
	w := NewWriter(NewDir(t.TempDir()), WriterConfig{MaxBytes: 1 << 30, MaxPendingBytes: 1 << 30})
	before := liveHeap()
	var raw int64
	seq := 0
	for c := range 30 { // made a chunk at a time, so the test holds no input
		for _, r := range genRecords(uint64(100+c), 5000, 1, 1, testStart) {
			seq++
			if err := w.Add("s", strconv.Itoa(seq), r.data, r.ev); err != nil {
				t.Fatal(err)
			}
			raw += int64(len(r.data))
		}
	}
	grown := int64(liveHeap()) - int64(before)
	pending := w.shard("s", false).pending
	t.Logf("%d events, %d raw bytes: heap grew %d bytes, %d encoded bytes pending", seq, raw, grown, pending)
	if grown > raw/3 {
		t.Fatalf("heap grew by %d bytes for %d raw bytes buffered, want at most a third", grown, raw)
	}
	if pending <= 0 || pending > raw/4 {
		t.Fatalf("pending = %d encoded bytes for %d raw bytes", pending, raw)
	}
	runtime.KeepAlive(w)
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
