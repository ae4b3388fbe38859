package event

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []Event{
		{ID: "a", Site: "demo", Type: "t"},
		{ID: "01JDX6T8Q5", Site: "demo", Type: "pageview", TS: 1764258000123, URL: "https://example.com/pricing",
			Ref: "https://news.example/", UID: "a-91f2", Props: map[string]any{"plan": "pro", "price": 49.0, "f": 0.5, "tiny": 1e-9, "neg": -1e15, "b": true, "z": false},
			RT: 1764258000999, Path: "/pricing", RefHost: "news.example", Device: "desktop", Bot: true,
			Visit: Visit{Source: "Hacker News", UTMSource: "hn", UTMMedium: "social", UTMCampaign: "launch", UTMContent: "top", UTMTerm: "a b",
				Browser: "Firefox", BrowserVersion: "133", OS: "GNU/Linux", OSVersion: "", Country: "DE"}},
		{ID: "q\"\\\n\r\t\x01\u2028é😀", Site: "demo", Type: "t", Props: map[string]any{"k\x7f": "<>&\u2029"}},
	}
	for _, e := range tests {
		t.Run(e.ID, func(t *testing.T) {
			b, err := Marshal(&e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Errorf("round trip:\n got %+v\nwant %+v\n%s", got, e, b)
			}
			// Other tools read records with plain JSON decoders.
			var std Event
			if err := json.Unmarshal(b, &std); err != nil {
				t.Fatalf("encoding/json: %v: %s", err, b)
			}
			if !reflect.DeepEqual(std, e) {
				t.Errorf("encoding/json reads\n %+v\nwant %+v", std, e)
			}
		})
	}
}

func TestMarshalMatchesEncodingJSON(t *testing.T) {
	e := Event{ID: "a", Site: "demo", Type: "t", TS: 1, Props: map[string]any{"b": 1.0, "a": "x", "c": 123456.789, "d": 1e-7}, RT: 2, Device: "bot", Bot: true,
		Visit: Visit{Source: "Google", UTMTerm: "x", Browser: "Chrome", BrowserVersion: "131", OS: "Android", OSVersion: "14", Country: "BR"}}
	got, err := Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(&e)
	if string(got) != string(want) {
		t.Errorf("Marshal = %s\nencoding/json = %s", got, want)
	}
}

func TestMarshalRefusesBadNumbers(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), []int{1}} {
		e := Event{ID: "a", Site: "demo", Type: "t", Props: map[string]any{"k": v}}
		if _, err := Marshal(&e); err == nil {
			t.Errorf("Marshal accepted %v", v)
		}
	}
}

func TestMarshalInvalidUTF8(t *testing.T) {
	e := Event{ID: "a\xffb", Site: "demo", Type: "t"}
	b, err := Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	var std map[string]any
	if err := json.Unmarshal(b, &std); err != nil || std["id"] != "a\ufffdb" {
		t.Errorf("got %v %v from %s", std, err, b)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	for _, in := range []string{``, `[]`, `{"id":"a"`, `{"id":"a"} x`, `{"rt":"x"}`, `{"bot":1}`, `{"props":{"a":[1]}}`} {
		if _, err := Unmarshal([]byte(in)); err == nil {
			t.Errorf("Unmarshal(%q) = nil error", in)
		}
	}
}

func TestValidate(t *testing.T) {
	base := func() Event { return Event{ID: "a", Site: "demo", Type: "t"} }
	tests := []struct {
		name string
		mod  func(*Event)
		want string // "" for valid
	}{
		{"valid", func(*Event) {}, ""},
		{"site chars ok", func(e *Event) { e.Site = "a-b_c.9" }, ""},
		{"site empty", func(e *Event) { e.Site = "" }, "site: must match"},
		{"site too long", func(e *Event) { e.Site = strings.Repeat("a", 65) }, "site: must match"},
		{"type space", func(e *Event) { e.Type = "a b" }, "type: must match"},
		{"id del", func(e *Event) { e.ID = "a\x7f" }, "id: control characters"},
		{"id C1 control", func(e *Event) { e.ID = "a\u0085" }, "id: control characters"},
		{"ts negative", func(e *Event) { e.TS = -1 }, "ts:"},
		{"ts max", func(e *Event) { e.TS = time.Date(2999, 12, 31, 23, 59, 59, 0, time.UTC).UnixMilli() }, ""},
		{"uid long", func(e *Event) { e.UID = strings.Repeat("u", 129) }, "uid: longer than 128 bytes"},
		{"ref NUL", func(e *Event) { e.Ref = "a\x00" }, "ref: NUL"},
		{"prop NaN", func(e *Event) { e.Props = map[string]any{"n": math.NaN()} }, "props.n: number out of range"},
		{"prop Inf", func(e *Event) { e.Props = map[string]any{"n": math.Inf(-1)} }, "props.n: number out of range"},
		{"prop int type", func(e *Event) { e.Props = map[string]any{"n": 3} }, "props.n: must be a string, number or bool"},
		{"prop key empty", func(e *Event) { e.Props = map[string]any{"": "x"} }, `props[""]: key must be`},
		{"prop key invalid utf8", func(e *Event) { e.Props = map[string]any{"\xff": "x"} }, "invalid UTF-8"},
		{"prop value invalid utf8", func(e *Event) { e.Props = map[string]any{"k": "\xff"} }, "props.k: invalid UTF-8"},
		{"prop value newline ok", func(e *Event) { e.Props = map[string]any{"k": "a\nb"} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := base()
			tt.mod(&e)
			err := e.Validate(Limits{})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate = %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestValidateFreeType: the types of a foreign format (Plausible's event
// names, which /v1/collect takes too) are any printable UTF-8 up to
// MaxEventName bytes; Validate (the /v1/collect.gif pixel's) keeps
// [a-z0-9_.-]{1,64}.
func TestValidateFreeType(t *testing.T) {
	tests := []struct {
		typ          string
		free, strict bool // valid under ValidateFreeType, under Validate
	}{
		{"pageview", true, true},
		{"Outbound Link: Click", true, false},
		{"File Download", true, false},
		{"404", true, true},
		{"Añadir al carrito 🛒", true, false},
		{strings.Repeat("x", MaxEventName), true, false},
		{strings.Repeat("x", MaxEventName+1), false, false},
		{"", false, false},
		{"a\x1fb", false, false},
		{"a\nb", false, false},
		{"a\u0085b", false, false},
		{"a\xffb", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			e := Event{ID: "a", Site: "demo", Type: tt.typ}
			if err := e.ValidateFreeType(Limits{}); (err == nil) != tt.free {
				t.Errorf("ValidateFreeType(%q) = %v, want valid %v", tt.typ, err, tt.free)
			}
			if err := e.Validate(Limits{}); (err == nil) != tt.strict {
				t.Errorf("Validate(%q) = %v, want valid %v", tt.typ, err, tt.strict)
			}
			if !tt.free {
				return
			}
			// The record keeps the type byte for byte, as the aggregator
			// and replay read it.
			e.RT, e.Path = 1, "/"
			b, err := Marshal(&e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unmarshal(b)
			if err != nil || got.Type != tt.typ {
				t.Errorf("record round trip of type %q: %q, %v", tt.typ, got.Type, err)
			}
		})
	}
}
