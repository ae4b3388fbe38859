package factrow

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/stats"
)

func TestRoundTrip(t *testing.T) {
	hour := int64(1_765_000_800_000)
	long := strings.Repeat("é", 400)
	evs := []event.Event{
		{Type: "pageview", Path: "/pricing", URL: "https://Shop.Example.com:8443/pricing?x=1", RefHost: "google.com", Device: "mobile", UID: "u1"},
		{Type: "signup", Path: "/", URL: "http://user@[::1]:80/", Props: map[string]any{"plan": "pro", "price": 19.99, "trial": true}},
		{Type: "click", Path: long, URL: "not a url", Props: map[string]any{"k": long}},
		{Type: "pageview"},
		{Type: "pageview", Path: "/", UID: "u2", Visit: event.Visit{Source: "Hacker News", UTMSource: "hn", UTMMedium: "social",
			UTMCampaign: "launch", UTMContent: "top", UTMTerm: long, Browser: "Firefox", BrowserVersion: "133.0",
			OS: "GNU/Linux", OSVersion: "", Country: "DE"}},
	}
	var blob []byte
	var want []stats.Row
	var direct []byte
	for i := range evs {
		r := FromEvent(&evs[i], hour+int64(i)*1000)
		want = append(want, r)
		blob = Append(blob, &r, hour)
		direct = AppendEvent(direct, &evs[i], r.TS, hour)
	}
	// AppendEvent writes FromEvent's row: the same length (props may
	// come in another order).
	if len(direct) != len(blob) {
		t.Errorf("AppendEvent wrote %d bytes, Append of FromEvent %d", len(direct), len(blob))
	}
	fromDirect, err := NewDecoder().Decode(nil, direct, hour)
	if err != nil || len(fromDirect) != len(evs) {
		t.Fatalf("AppendEvent's rows: %d, %v", len(fromDirect), err)
	}
	for i := range fromDirect {
		if !sameProps(fromDirect[i].Props, want[i].Props) {
			t.Errorf("AppendEvent row %d props %v, want %v", i, fromDirect[i].Props, want[i].Props)
		}
	}
	got, err := NewDecoder().Decode(nil, blob, hour)
	if err != nil {
		t.Fatal(err)
	}
	// Props come from a map: compare as sets.
	for i := range got {
		if !sameProps(got[i].Props, want[i].Props) {
			t.Errorf("row %d props = %v, want %v", i, got[i].Props, want[i].Props)
		}
		got[i].Props, want[i].Props = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if want[0].Hostname != "shop.example.com" || want[1].Hostname != "[::1]" || want[2].Hostname != "" {
		t.Errorf("hostnames %q %q %q", want[0].Hostname, want[1].Hostname, want[2].Hostname)
	}
	if len(want[2].Page) > 256 || !strings.HasSuffix(want[2].Page, "…") {
		t.Errorf("a long page is not cut as the aggregates cut it: %d bytes", len(want[2].Page))
	}
	if v := want[4]; v.Source != "Hacker News" || v.UTMCampaign != "launch" || v.Country != "DE" || v.BrowserVersion != "133.0" ||
		len(v.UTMTerm) > 256 {
		t.Errorf("visit fields %+v", v)
	}
	if want[1].Visitor != 0 || want[0].Visitor == 0 {
		t.Errorf("visitors %d %d: an event without uid has none", want[0].Visitor, want[1].Visitor)
	}
}

func sameProps(a, b []stats.RowProp) bool {
	if len(a) != len(b) {
		return false
	}
	for _, p := range a {
		found := false
		for _, q := range b {
			found = found || p == q
		}
		if !found {
			return false
		}
	}
	return true
}

func TestDecodeRefuses(t *testing.T) {
	hour := int64(0)
	r := stats.Row{TS: 5, Goal: "pageview", Page: "/"}
	good := Append(nil, &r, hour)
	future := append([]byte{2, 9, 9}, good...) // a version-9 row, then a good one
	tests := []struct {
		name    string
		blob    []byte
		rows    int
		corrupt bool
	}{
		{"empty", nil, 0, false},
		{"one row", good, 1, false},
		{"unknown version skipped", future, 1, false},
		{"length past the end", good[:len(good)-1], 0, true},
		{"good then garbage", append(append([]byte{}, good...), 0xff), 1, true},
		{"time past the hour", Append(nil, &stats.Row{TS: HourMs + 1}, 0), 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := NewDecoder().Decode(nil, tc.blob, hour)
			if len(rows) != tc.rows || errors.Is(err, ErrCorrupt) != tc.corrupt {
				t.Errorf("rows %d err %v, want %d rows, corrupt %v", len(rows), err, tc.rows, tc.corrupt)
			}
		})
	}
}

func TestHourOf(t *testing.T) {
	for _, tc := range []struct{ ts, want int64 }{{0, 0}, {3_599_999, 0}, {3_600_000, 3_600_000}, {-1, -3_600_000}} {
		if got := HourOf(tc.ts); got != tc.want {
			t.Errorf("HourOf(%d) = %d, want %d", tc.ts, got, tc.want)
		}
	}
}

// TestDecodeVersion1: rows appended before the visit fields (version 1)
// still read, with those fields empty, beside version 2 rows in the same
// hour's string.
func TestDecodeVersion1(t *testing.T) {
	r := stats.Row{TS: 5, Goal: "pageview", Page: "/old", Hostname: "h", Referrer: "r", Device: "mobile", Visitor: 3,
		Props: []stats.RowProp{{Key: "plan", Value: "pro"}}}
	body := []byte{version1, 5}
	for _, s := range []string{r.Goal, r.Page, r.Hostname, r.Referrer, r.Device} {
		body = putStr(body, s)
	}
	body = binary.LittleEndian.AppendUint64(body, r.Visitor)
	body = append(body, 1)
	body = putStr(body, "plan")
	body = append(body, propText)
	body = putStr(body, "pro")
	blob := append(binary.AppendUvarint(nil, uint64(len(body))), body...)
	v2 := stats.Row{TS: 6, Goal: "pageview", Page: "/new", Source: "Google", Country: "FR"}
	blob = Append(blob, &v2, 0)
	got, err := NewDecoder().Decode(nil, blob, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []stats.Row{r, v2}; !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
}

// FuzzDecode: any bytes decode to rows or an ErrCorrupt, never a panic,
// and rows re-encode to bytes that decode to the same rows.
func FuzzDecode(f *testing.F) {
	r := stats.Row{TS: 7, Goal: "signup", Page: "/a", Visitor: 9, Props: []stats.RowProp{{Key: "plan", Value: "pro"}, {Key: "n", Num: 2.5, IsNum: true, Value: "2.5"}}}
	f.Add(Append(nil, &r, 0))
	r.Source, r.UTMSource, r.Browser, r.OS, r.Country = "Google", "ads", "Safari", "iOS", "GB"
	f.Add(Append(nil, &r, 0))
	f.Add([]byte{1, 1})
	f.Add([]byte{2, 2})
	f.Fuzz(func(t *testing.T, blob []byte) {
		rows, err := NewDecoder().Decode(nil, blob, 0)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		var again []byte
		for i := range rows {
			again = Append(again, &rows[i], 0)
		}
		back, err := NewDecoder().Decode(nil, again, 0)
		if err != nil || len(back) != len(rows) {
			t.Fatalf("re-encoded rows: %d of %d, %v", len(back), len(rows), err)
		}
	})
}

// TestHostname: the host of the page's URL, as ingest reads the URL for
// the page (event:page and event:hostname name the same page).
func TestHostname(t *testing.T) {
	tests := []struct{ url, want string }{
		{"https://Shop.Example:8443/pricing?x=1", "shop.example"},
		{"http://user:pw@blog.example/a", "blog.example"},
		{"HTTPS://Shop.Example", "shop.example"},
		{"https://shop.example?q=1", "shop.example"},
		{"https://shop.example#top", "shop.example"},
		{"https://[::1]:8080/", "[::1]"},
		{"android-app://com.slack/", "com.slack"},
		{"//Shop.Example/x", "shop.example"}, // scheme-relative: ingest's page is /x
		{"/login?next=https://other.example/x", ""},
		{"shop.example/y?u=http://other.example", ""},
		{"/a#https://other.example", ""},
		{"1http://other.example/", ""}, // not a scheme: it starts with a digit
		{"mailto:a@b.example", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Hostname(tt.url); got != tt.want {
			t.Errorf("Hostname(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}
