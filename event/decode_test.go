package event

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const valid = `{"id":"e1","site":"demo","type":"pageview","ts":1764258000123,"url":"https://example.com/pricing","ref":"https://news.example/","uid":"a-91f2","props":{"plan":"pro","price":49,"beta":true}}`

func ev(id string) string {
	return `{"id":"` + id + `","site":"demo","type":"click"}`
}

func TestDecode(t *testing.T) {
	type want struct {
		ids     []string // accepted ids, in order
		idx     []int
		rejects map[int]string // index -> substring of the error
		err     error
	}
	tests := []struct {
		name string
		body string
		lim  Limits
		want want
	}{
		{"single", valid, Limits{}, want{ids: []string{"e1"}, idx: []int{0}}},
		{"single pretty", "{\n  \"id\": \"a\",\n  \"site\": \"demo\",\n  \"type\": \"pv\"\n}\n", Limits{}, want{ids: []string{"a"}, idx: []int{0}}},
		{"single leading space", " \r\n\t" + ev("a"), Limits{}, want{ids: []string{"a"}, idx: []int{0}}},
		{"bom", "\xef\xbb\xbf" + ev("a") + "\n" + ev("b"), Limits{}, want{ids: []string{"a", "b"}, idx: []int{0, 1}}},
		{"array", "[" + ev("a") + "," + ev("b") + "]", Limits{}, want{ids: []string{"a", "b"}, idx: []int{0, 1}}},
		{"array with bad elements", "[" + ev("a") + `,{"id":"b","site":"Demo","type":"x"},42,` + ev("c") + "]", Limits{},
			want{ids: []string{"a", "c"}, idx: []int{0, 3}, rejects: map[int]string{1: "site: must match [a-z0-9_.-]{1,64}", 2: "must be a JSON object"}}},
		{"ndjson", ev("a") + "\n" + ev("b") + "\n", Limits{}, want{ids: []string{"a", "b"}, idx: []int{0, 1}}},
		{"ndjson crlf and blank lines", ev("a") + "\r\n\r\n  \n" + ev("b") + "\r\n", Limits{}, want{ids: []string{"a", "b"}, idx: []int{0, 1}}},
		{"ndjson mixed", ev("a") + "\n{\"id\":\n" + ev("c") + "\n[1]\n" + `{"id":"e","site":"demo","type":"t","ts":-1}` + "\n" + ev("f") + " x\n" + ev("g"), Limits{},
			want{ids: []string{"a", "c", "g"}, idx: []int{0, 2, 6}, rejects: map[int]string{
				1: "invalid JSON at offset 6: unexpected end of input", 3: "must be a JSON object", 4: "ts: must be ms since the epoch", 5: "data after the object"}}},
		{"ndjson first line broken", "{\"id\":\"a\"\n" + ev("b"), Limits{}, want{ids: []string{"b"}, idx: []int{1}, rejects: map[int]string{0: "invalid JSON"}}},
		{"single broken", `{"id":"a",`, Limits{}, want{rejects: map[int]string{0: "unexpected end of input"}}},
		{"not json", "hello", Limits{}, want{rejects: map[int]string{0: "unexpected character 'h'"}}},
		{"empty", "", Limits{}, want{err: ErrEmpty}},
		{"blank", " \n\r\n\t", Limits{}, want{err: ErrEmpty}},
		{"empty array", "[ ]", Limits{}, want{err: ErrEmpty}},
		{"malformed array", "[" + ev("a") + ",{\"id\":]", Limits{}, want{err: ErrMalformed}},
		{"unterminated array", "[" + ev("a"), Limits{}, want{err: ErrMalformed}},
		{"data after array", "[" + ev("a") + "] x", Limits{}, want{err: ErrMalformed}},
		{"too many array", "[" + ev("a") + "," + ev("b") + "," + ev("c") + "]", Limits{MaxEvents: 2}, want{err: ErrTooMany}},
		{"too many ndjson", ev("a") + "\n" + ev("b") + "\n" + ev("c"), Limits{MaxEvents: 2}, want{err: ErrTooMany}},
		{"too large", valid, Limits{MaxBodyBytes: 10}, want{err: ErrTooLarge}},
		{"unknown fields ignored", `{"id":"a","site":"demo","type":"t","extra":{"a":[1,2,{"b":null}]},"v":2}`, Limits{}, want{ids: []string{"a"}, idx: []int{0}}},
		{"server fields from client ignored", `{"id":"a","site":"demo","type":"t","rt":5,"bot":"yes","device":7}`, Limits{}, want{ids: []string{"a"}, idx: []int{0}}},
		{"visit fields from client ignored", `{"id":"a","site":"demo","type":"t","source":5,"country":"ZZ","browser":"x"}`, Limits{}, want{ids: []string{"a"}, idx: []int{0}}},
		{"nulls", `{"id":"a","site":"demo","type":"t","ts":null,"url":null,"props":null}`, Limits{}, want{ids: []string{"a"}, idx: []int{0}}},
		{"missing id", `{"site":"demo","type":"t"}`, Limits{}, want{rejects: map[int]string{0: "id: required"}}},
		{"long id", `{"id":"` + strings.Repeat("x", 65) + `","site":"demo","type":"t"}`, Limits{}, want{rejects: map[int]string{0: "id: required, 1 to 64 bytes"}}},
		{"control in id", `{"id":"a\tb","site":"demo","type":"t"}`, Limits{}, want{rejects: map[int]string{0: "id: control characters"}}},
		{"site wrong type", `{"id":"a","site":5,"type":"t"}`, Limits{}, want{rejects: map[int]string{0: "site: must be a string"}}},
		{"type of Plausible's tracker", `{"id":"a","site":"demo","type":"Outbound Link: Click","props":{"url":"https://x.example/"}}`, Limits{}, want{ids: []string{"a"}, idx: []int{0}}},
		{"type with a control character", `{"id":"a","site":"demo","type":"Click\u0007"}`, Limits{}, want{rejects: map[int]string{0: "type: required, 1 to 120 bytes of UTF-8 without control characters"}}},
		{"type too long", `{"id":"a","site":"demo","type":"` + strings.Repeat("x", MaxEventName+1) + `"}`, Limits{}, want{rejects: map[int]string{0: "type: required"}}},
		{"hash flag", `{"id":"a","site":"demo","type":"t","hash":true}`, Limits{}, want{ids: []string{"a"}, idx: []int{0}}},
		{"hash not a bool", `{"id":"a","site":"demo","type":"t","hash":1}`, Limits{}, want{rejects: map[int]string{0: "hash: must be a bool"}}},
		{"ts fraction", `{"id":"a","site":"demo","type":"t","ts":1.5}`, Limits{}, want{rejects: map[int]string{0: "ts: must be an integer"}}},
		{"ts string", `{"id":"a","site":"demo","type":"t","ts":"1"}`, Limits{}, want{rejects: map[int]string{0: "ts: must be an integer"}}},
		{"ts year 3000", `{"id":"a","site":"demo","type":"t","ts":32503680000000}`, Limits{}, want{rejects: map[int]string{0: "ts: must be ms"}}},
		{"ts overflow", `{"id":"a","site":"demo","type":"t","ts":99999999999999999999}`, Limits{}, want{rejects: map[int]string{0: "ts: out of range"}}},
		{"invalid utf8", "{\"id\":\"a\",\"site\":\"demo\",\"type\":\"t\",\"url\":\"https://x/\xff\"}", Limits{}, want{rejects: map[int]string{0: "url: invalid UTF-8"}}},
		{"escaped NUL", `{"id":"a","site":"demo","type":"t","uid":"a\u0000b"}`, Limits{}, want{rejects: map[int]string{0: "uid: NUL bytes are not allowed"}}},
		{"raw NUL", "{\"id\":\"a\",\"site\":\"demo\",\"type\":\"t\",\"uid\":\"a\x00b\"}", Limits{}, want{rejects: map[int]string{0: "control byte 0x0 in string"}}},
		{"escapes", `{"id":"\u00e9\ud83d\ude00","site":"demo","type":"t","url":"/a\/b\"c\\"}`, Limits{}, want{ids: []string{"é😀"}, idx: []int{0}}},
		{"long url", `{"id":"a","site":"demo","type":"t","url":"` + strings.Repeat("u", 2049) + `"}`, Limits{}, want{rejects: map[int]string{0: "url: longer than 2048 bytes"}}},
		{"nested props", `{"id":"a","site":"demo","type":"t","props":{"a":{"b":1}}}`, Limits{}, want{rejects: map[int]string{0: "props.a: nested objects and arrays are not allowed"}}},
		{"props array", `{"id":"a","site":"demo","type":"t","props":[1]}`, Limits{}, want{rejects: map[int]string{0: "props: must be an object"}}},
		{"props null value", `{"id":"a","site":"demo","type":"t","props":{"a":null}}`, Limits{}, want{rejects: map[int]string{0: "props.a: null is not allowed"}}},
		{"huge number", `{"id":"a","site":"demo","type":"t","props":{"n":1e16}}`, Limits{}, want{rejects: map[int]string{0: "props.n: number out of range"}}},
		{"overflow number", `{"id":"a","site":"demo","type":"t","props":{"n":-1e400}}`, Limits{}, want{rejects: map[int]string{0: "props.n: number out of range"}}},
		{"too many props", `{"id":"a","site":"demo","type":"t","props":{"a":1,"b":2,"c":3}}`, Limits{MaxProps: 2}, want{rejects: map[int]string{0: "props: more than 2 keys"}}},
		{"long prop key", `{"id":"a","site":"demo","type":"t","props":{"` + strings.Repeat("k", 65) + `":1}}`, Limits{}, want{rejects: map[int]string{0: "key must be 1 to 64 bytes"}}},
		{"long prop value", `{"id":"a","site":"demo","type":"t","props":{"k":"` + strings.Repeat("v", 513) + `"}}`, Limits{}, want{rejects: map[int]string{0: "props.k: longer than 512 bytes"}}},
		{"deep nesting ndjson", ev("a") + "\n" + `{"id":"b","site":"demo","type":"t","x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "}\n" + ev("c"), Limits{},
			want{ids: []string{"a", "c"}, idx: []int{0, 2}, rejects: map[int]string{1: "nested deeper than 8 levels"}}},
		{"deep nesting array", "[" + ev("a") + `,{"id":"b","site":"demo","type":"t","x":` + strings.Repeat(`{"a":[`, 5000) + strings.Repeat("]}", 5000) + "}," + strings.Repeat("[", 300) + strings.Repeat("]", 300) + "]", Limits{},
			want{ids: []string{"a"}, idx: []int{0}, rejects: map[int]string{1: "nested deeper than 8 levels", 2: "must be a JSON object"}}},
		{"deep nesting unterminated", "[" + strings.Repeat("[", 100000), Limits{}, want{err: ErrMalformed}},
		{"deep nesting single pretty", "{\"id\":\"a\",\"site\":\"demo\",\"type\":\"t\",\n\"x\":" + strings.Repeat("[\n", 20) + strings.Repeat("]\n", 20) + "}", Limits{},
			want{rejects: map[int]string{0: "nested deeper than 8 levels"}}},
		{"nesting within limit", `{"id":"a","site":"demo","type":"t","x":[[[[[[[1]]]]]]]}`, Limits{}, want{ids: []string{"a"}, idx: []int{0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, idx, rejects, err := Decode([]byte(tt.body), tt.lim)
			if tt.want.err != nil {
				if !errors.Is(err, tt.want.err) {
					t.Fatalf("err = %v, want %v", err, tt.want.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			var ids []string
			for _, e := range evs {
				ids = append(ids, e.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.want.ids, ",") {
				t.Errorf("ids = %q, want %q", ids, tt.want.ids)
			}
			if len(idx) != len(tt.want.idx) {
				t.Fatalf("idx = %v, want %v", idx, tt.want.idx)
			}
			for i := range idx {
				if idx[i] != tt.want.idx[i] {
					t.Errorf("idx = %v, want %v", idx, tt.want.idx)
				}
			}
			if len(rejects) != len(tt.want.rejects) {
				t.Fatalf("rejects = %+v, want %v", rejects, tt.want.rejects)
			}
			for _, r := range rejects {
				sub, ok := tt.want.rejects[r.Index]
				if !ok || !strings.Contains(r.Error, sub) {
					t.Errorf("reject %d = %q, want it to contain %q", r.Index, r.Error, sub)
				}
				if r.Reason == "" {
					t.Errorf("reject %d has no reason", r.Index)
				}
			}
		})
	}
}

func TestDecodeFields(t *testing.T) {
	evs, _, rejects, err := Decode([]byte(valid), Limits{})
	if err != nil || len(rejects) != 0 || len(evs) != 1 {
		t.Fatalf("Decode: %v %v %v", evs, rejects, err)
	}
	e := evs[0]
	if e.ID != "e1" || e.Site != "demo" || e.Type != "pageview" || e.TS != 1764258000123 ||
		e.URL != "https://example.com/pricing" || e.Ref != "https://news.example/" || e.UID != "a-91f2" {
		t.Errorf("fields: %+v", e)
	}
	if e.Props["plan"] != "pro" || e.Props["price"] != 49.0 || e.Props["beta"] != true || len(e.Props) != 3 {
		t.Errorf("props: %#v", e.Props)
	}
	if e.RT != 0 || e.Device != "" || e.Bot || e.Visit != (Visit{}) {
		t.Errorf("server fields set by Decode: %+v", e)
	}
	// A client cannot set what ingest derives about the visit either.
	evs, _, _, _ = Decode([]byte(`{"id":"a","site":"demo","type":"t","country":"ZZ","source":"Google","browser":"x","utm_source":"y"}`), Limits{})
	if len(evs) != 1 || evs[0].Visit != (Visit{}) {
		t.Errorf("visit fields set by Decode: %+v", evs)
	}
}

func TestRejectReason(t *testing.T) {
	_, _, rejects, err := Decode([]byte(`[{"id":"a","site":"demo","type":"t","props":{"k":[1]}},{"id":"a","site":"demo","type":"t","ts":true},3,`+
		`{"id":"a","site":"demo","type":"t","x":[[[[[[[[[]]]]]]]]]},{"id":"a","site":"demo","type":"t","url":"\u0000"},`+
		// A long key is quoted and cut with "...": the reason is still "props".
		`{"id":"a","site":"demo","type":"t","props":{"`+strings.Repeat("k", 200)+`":1}}]`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"props", "ts", "object", "depth", "url", "props"}
	if len(rejects) != len(want) {
		t.Fatalf("rejects %+v", rejects)
	}
	for i, r := range rejects {
		if r.Reason != want[i] {
			t.Errorf("reject %d reason %q, want %q", i, r.Reason, want[i])
		}
	}
}

// The string decoder agrees with encoding/json on escapes and surrogates.
func TestStringEscapes(t *testing.T) {
	for _, lit := range []string{
		`"plain"`, `""`, `"\"\\\/\b\f\n\r\t"`, `"\u00e9\u4e2d"`, `"\ud83d\ude00"`, `"\ud83dx"`, `"\ude00\ud83d"`,
		`"\ud83d\u0041"`, `"\ud83d"`, `"a\ud83d\ud83d\ude00b"`, `"\u0000"`, `"é raw"`, `"\uDBFF\uDFFF"`,
	} {
		var want string
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatalf("%s: %v", lit, err)
		}
		p := parser{b: []byte(lit), s: lit}
		got, err := p.strVal()
		if err != nil || got != want || p.i != len(lit) {
			t.Errorf("%s: got %q (%v, at %d), want %q", lit, got, err, p.i, want)
		}
	}
	for _, bad := range []string{`"\x"`, `"\u12"`, `"\u12g4"`, `"abc`, "\"a\nb\"", `"\ud83d\u12"`} {
		p := parser{b: []byte(bad), s: bad}
		if _, err := p.strVal(); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// TestDecodeIntoReuses checks that decoding into storage a previous body
// filled gives what Decode gives, whatever that storage held, and that
// storage large enough is used rather than replaced.
func TestDecodeIntoReuses(t *testing.T) {
	bodies := []string{
		"[" + ev("a") + "," + ev("b") + "," + ev("c") + "]",
		valid,
		ev("d") + "\n" + ev("e") + "\n",
		"[" + ev("f") + `,{"id":"g","site":"Demo","type":"x"}]`,
		"[]",
		"[" + ev("h") + "]",
	}
	evs, idx := make([]Event, 0, 4), make([]int, 0, 4)
	for _, body := range bodies {
		wantEvs, wantIdx, wantRejects, wantErr := Decode([]byte(body), Limits{})
		gotEvs, gotIdx, gotRejects, gotErr := DecodeInto(evs, idx, []byte(body), Limits{})
		if !errors.Is(gotErr, wantErr) && (gotErr == nil || wantErr == nil || gotErr.Error() != wantErr.Error()) {
			t.Fatalf("%s: err %v, want %v", body, gotErr, wantErr)
		}
		got, _ := json.Marshal([]any{gotEvs, gotIdx, gotRejects})
		want, _ := json.Marshal([]any{wantEvs, wantIdx, wantRejects})
		if string(got) != string(want) {
			t.Fatalf("%s: DecodeInto gave\n%s\nDecode gave\n%s", body, got, want)
		}
		if len(gotEvs) > 0 && &gotEvs[:1][0] != &evs[:1][0] {
			t.Fatalf("%s: %d events decoded into new storage, not the 4 given", body, len(gotEvs))
		}
		// The next body decodes over what this one left.
		evs, idx = gotEvs[:0], gotIdx[:0]
		if cap(evs) < 4 {
			evs, idx = make([]Event, 0, 4), make([]int, 0, 4)
		}
	}
}
