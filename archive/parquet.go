package archive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/parquet-go/parquet-go"

	"github.com/pulsehq/pulse/event"
)

// ContentType is the media type of archive objects.
const ContentType = "application/vnd.apache.parquet"

// Footer key-value metadata written into every object, so the object
// describes itself wherever it is copied.
const (
	metaShard   = "pulse.shard"
	metaFirst   = "pulse.first_seq"
	metaLast    = "pulse.last_seq"
	metaRecords = "pulse.records"
)

// row is the archive's Parquet schema, one row per event. Optional strings
// are NULL when empty, which is what the event's JSON omits, so engines can
// test "uid IS NULL". They are pointers because parquet-go v0.32.0 writes a
// zero non-pointer optional value as present (an empty string, not NULL)
// when it follows a non-zero one in a batch. Low-cardinality columns are
// dictionary encoded. props is the JSON of the props map, a plain UTF8
// column every engine reads (json_extract / get_json_object query it).
type row struct {
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
	// The visit fields (event.Visit); objects written before them read
	// as NULL.
	Source         *string `parquet:"source,optional,dict"`
	UTMSource      *string `parquet:"utm_source,optional,dict"`
	UTMMedium      *string `parquet:"utm_medium,optional,dict"`
	UTMCampaign    *string `parquet:"utm_campaign,optional,dict"`
	UTMContent     *string `parquet:"utm_content,optional,dict"`
	UTMTerm        *string `parquet:"utm_term,optional,dict"`
	Browser        *string `parquet:"browser,optional,dict"`
	BrowserVersion *string `parquet:"browser_version,optional,dict"`
	OS             *string `parquet:"os,optional,dict"`
	OSVersion      *string `parquet:"os_version,optional,dict"`
	Country        *string `parquet:"country,optional,dict"`
}

func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func toRow(shard, seq string, ev *event.Event) (row, error) {
	r := row{
		ID: ev.ID, Site: ev.Site, Type: ev.Type, TS: ev.TS, RT: ev.RT,
		URL: opt(ev.URL), Ref: opt(ev.Ref), UID: opt(ev.UID),
		Path: opt(ev.Path), RefHost: opt(ev.RefHost), Device: opt(ev.Device), Bot: ev.Bot,
		Shard: shard, Seq: seq,
		Source: opt(ev.Source), UTMSource: opt(ev.UTMSource), UTMMedium: opt(ev.UTMMedium),
		UTMCampaign: opt(ev.UTMCampaign), UTMContent: opt(ev.UTMContent), UTMTerm: opt(ev.UTMTerm),
		Browser: opt(ev.Browser), BrowserVersion: opt(ev.BrowserVersion), OS: opt(ev.OS),
		OSVersion: opt(ev.OSVersion), Country: opt(ev.Country),
	}
	if len(ev.Props) > 0 {
		b, err := json.Marshal(ev.Props) // map keys sorted: deterministic bytes
		if err != nil {
			return row{}, fmt.Errorf("encode props of event %s: %w", ev.ID, err)
		}
		r.Props = opt(string(b))
	}
	return r, nil
}

func (r *row) event() (event.Event, error) {
	ev := event.Event{
		ID: r.ID, Site: r.Site, Type: r.Type, TS: r.TS, RT: r.RT,
		URL: str(r.URL), Ref: str(r.Ref), UID: str(r.UID),
		Path: str(r.Path), RefHost: str(r.RefHost), Device: str(r.Device), Bot: r.Bot,
		Visit: event.Visit{Source: str(r.Source), UTMSource: str(r.UTMSource), UTMMedium: str(r.UTMMedium),
			UTMCampaign: str(r.UTMCampaign), UTMContent: str(r.UTMContent), UTMTerm: str(r.UTMTerm),
			Browser: str(r.Browser), BrowserVersion: str(r.BrowserVersion), OS: str(r.OS),
			OSVersion: str(r.OSVersion), Country: str(r.Country)},
	}
	if r.Props != nil && *r.Props != "" {
		if err := json.Unmarshal([]byte(*r.Props), &ev.Props); err != nil {
			return event.Event{}, fmt.Errorf("decode props of event %s (shard %s seq %s): %w", r.ID, r.Shard, r.Seq, err)
		}
	}
	return ev, nil
}

// pageBufferSize is where the encoder cuts a column's page. An open object
// holds up to one uncompressed page per column (27): at parquet-go's default
// of 256 KiB that was 9 MiB at the peak of an object of 64 MiB of records,
// at 64 KiB it is 7 MiB, for objects 2% larger.
const pageBufferSize = 64 << 10

// encoder streams the rows of one object into a Parquet writer as they
// arrive: parquet-go keeps each column's values of the current page, cuts
// the page at PageBufferSize and keeps it Zstd-compressed, so an object
// being assembled holds its encoded form (about a tenth of the stream
// records, see BenchmarkWrite), not decoded events. All pages form one row
// group, written out with the footer by close.
type encoder struct {
	out   *bytes.Buffer
	pw    *parquet.GenericWriter[row]
	one   [1]row // the row being written, so write allocates no slice
	first string
	last  string
	n     int
}

// newEncoder starts the object of shard whose first row has seq first.
func newEncoder(shard, first string) *encoder {
	out := new(bytes.Buffer)
	return &encoder{
		out: out,
		pw: parquet.NewGenericWriter[row](out,
			parquet.Compression(&parquet.Zstd),
			parquet.CreatedBy("pulse", "1", ""),
			parquet.PageBufferSize(pageBufferSize),
			parquet.KeyValueMetadata(metaShard, shard),
			parquet.KeyValueMetadata(metaFirst, first),
		),
		first: first,
	}
}

// write adds r, the next row in seq order.
func (e *encoder) write(r *row) error {
	e.one[0] = *r
	_, err := e.pw.Write(e.one[:])
	e.one[0] = row{}
	if err != nil {
		return fmt.Errorf("encode row seq %s: %w", r.Seq, err)
	}
	e.last = r.Seq
	e.n++
	return nil
}

// size is what the encoder holds: compressed pages, the values of the pages
// being filled and the dictionaries. It depends only on the rows written,
// so a bound on it cuts at the same row in a rebuild.
func (e *encoder) size() int64 { return e.pw.Size() }

// close writes the footer and returns the object.
func (e *encoder) close() ([]byte, error) {
	if e.n == 0 {
		return nil, errors.New("encode object: no rows")
	}
	e.pw.SetKeyValueMetadata(metaLast, e.last)
	e.pw.SetKeyValueMetadata(metaRecords, strconv.Itoa(e.n))
	// The pages are copied out at close: room for them and the footer
	// spares the buffer its doublings.
	e.out.Grow(int(e.pw.Size()) + 64<<10)
	if err := e.pw.Close(); err != nil {
		return nil, fmt.Errorf("encode object: close: %w", err)
	}
	body := e.out.Bytes()
	e.out, e.pw = nil, nil
	return body, nil
}

// decodeObject calls fn for every row of a Parquet object, in file order,
// reading a bounded batch of rows at a time. Objects come from storage and
// may be damaged or foreign, so a panic of the Parquet library on malformed
// input is returned as an error.
func decodeObject(r io.ReaderAt, size int64, fn func(*row) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decode parquet: malformed object: %v", p)
		}
	}()
	if err := checkFooter(r, size); err != nil {
		return err
	}
	f, err := parquet.OpenFile(r, size, parquet.SkipBloomFilters(true))
	if err != nil {
		return fmt.Errorf("decode parquet: %w", err)
	}
	if err := checkSizes(f, size); err != nil {
		return err
	}
	buf := make([]row, 256)
	for _, rg := range f.RowGroups() {
		rr := parquet.NewGenericRowGroupReader[row](rg)
		for {
			n, rerr := rr.Read(buf)
			for i := 0; i < n; i++ {
				if err := fn(&buf[i]); err != nil {
					rr.Close()
					return err
				}
			}
			if errors.Is(rerr, io.EOF) {
				break
			}
			if rerr != nil {
				rr.Close()
				return fmt.Errorf("decode parquet: %w", rerr)
			}
		}
		if err := rr.Close(); err != nil {
			return fmt.Errorf("decode parquet: close: %w", err)
		}
	}
	return nil
}

// maxUncompressed bounds what a column chunk may claim to inflate to, so a
// damaged footer cannot make the reader allocate without limit. Archive
// objects stay far below it (MaxBytes raw in all columns together).
const maxUncompressed = 1 << 30

// checkSizes rejects footers whose sizes cannot be right for a file of size
// bytes, before any page is read.
func checkSizes(f *parquet.File, size int64) error {
	md := f.Metadata()
	if md.NumRows < 0 || md.NumRows > size*64 {
		return fmt.Errorf("decode parquet: %d rows in %d bytes", md.NumRows, size)
	}
	for _, rg := range md.RowGroups {
		if rg.NumRows < 0 || rg.NumRows > md.NumRows {
			return fmt.Errorf("decode parquet: row group of %d rows in a file of %d", rg.NumRows, md.NumRows)
		}
		for _, c := range rg.Columns {
			m := c.MetaData
			if m.TotalCompressedSize < 0 || m.TotalCompressedSize > size ||
				m.TotalUncompressedSize < 0 || m.TotalUncompressedSize > maxUncompressed ||
				m.NumValues < 0 || m.NumValues > size*64 {
				return fmt.Errorf("decode parquet: column chunk sizes (%d compressed, %d uncompressed, %d values) impossible in %d bytes",
					m.TotalCompressedSize, m.TotalUncompressedSize, m.NumValues, size)
			}
		}
	}
	return nil
}
