package archive

import (
	"bytes"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/pulsehq/pulse/event"
)

// rowBeforeVisit is the archive's schema before the visit fields (commit
// 58251e4 and earlier): objects in buckets were written with it.
type rowBeforeVisit struct {
	ID      string  `parquet:"id"`
	Site    string  `parquet:"site,dict"`
	Type    string  `parquet:"type,dict"`
	TS      int64   `parquet:"ts,timestamp(millisecond)"`
	RT      int64   `parquet:"rt,timestamp(millisecond)"`
	URL     *string `parquet:"url,optional"`
	Ref     *string `parquet:"ref,optional"`
	UID     *string `parquet:"uid,optional"`
	Path    *string `parquet:"path,optional,dict"`
	RefHost *string `parquet:"ref_host,optional,dict"`
	Device  *string `parquet:"device,optional,dict"`
	Bot     bool    `parquet:"bot"`
	Props   *string `parquet:"props,optional"`
	Shard   string  `parquet:"shard,dict"`
	Seq     string  `parquet:"seq"`
}

// TestReadsObjectsBeforeVisit: an object written before the visit columns
// reads as events without visit fields, so a replay of an older archive
// still works.
func TestReadsObjectsBeforeVisit(t *testing.T) {
	url, dev := "https://example.com/a", "mobile"
	old := []rowBeforeVisit{
		{ID: "a", Site: "demo", Type: "pageview", TS: 1, RT: 2, URL: &url, Device: &dev, Shard: "s", Seq: "1"},
		{ID: "b", Site: "demo", Type: "signup", TS: 3, RT: 4, Shard: "s", Seq: "2"},
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[rowBeforeVisit](&buf, parquet.Compression(&parquet.Zstd),
		parquet.KeyValueMetadata(metaShard, "s"), parquet.KeyValueMetadata(metaFirst, "1"),
		parquet.KeyValueMetadata(metaLast, "2"), parquet.KeyValueMetadata(metaRecords, "2"))
	if _, err := w.Write(old); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []event.Event
	err := decodeObject(bytes.NewReader(buf.Bytes()), int64(buf.Len()), func(r *row) error {
		ev, err := r.event()
		got = append(got, ev)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "a" || got[0].Device != "mobile" || got[0].URL != url || got[1].Type != "signup" ||
		got[0].Visit != (event.Visit{}) || got[1].Visit != (event.Visit{}) {
		t.Fatalf("read %+v", got)
	}
}
