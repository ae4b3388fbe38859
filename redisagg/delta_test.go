package redisagg

import (
	"encoding/json"
	"testing"
)

func TestDecodeDeltaEntry(t *testing.T) {
	cases := []struct {
		name, in string
		want     DeltaEntry
		wantErr  bool
	}{
		{name: "redis cjson", in: `{"n":3,"metric":"pageviews","points":[{"step":"10s","t":1764258000000,"labels":{},"add":3,"value":57},{"step":"10s","t":1764258000000,"labels":{"path":"\/x"},"add":1,"value":2}]}`,
			want: DeltaEntry{N: 3, Metric: "pageviews", Points: []DeltaPoint{
				{Step: "10s", T: 1764258000000, Labels: map[string]string{}, Add: 3, Value: 57},
				{Step: "10s", T: 1764258000000, Labels: map[string]string{"path": "/x"}, Add: 1, Value: 2}}}},
		{name: "empty labels as array, exponent numbers", in: `{"n":1,"metric":"e","points":[{"step":"1m","t":1.764258e+12,"labels":[],"add":1,"value":1}]}`,
			want: DeltaEntry{N: 1, Metric: "e", Points: []DeltaPoint{{Step: "1m", T: 1764258000000, Labels: map[string]string{}, Add: 1, Value: 1}}}},
		{name: "fractional number", in: `{"n":1.5,"metric":"e","points":[]}`, wantErr: true},
		{name: "label not a string", in: `{"n":1,"metric":"e","points":[{"labels":{"a":1}}]}`, wantErr: true},
		{name: "not json", in: `nope`, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeDeltaEntry([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(tc.want)
			if string(a) != string(b) {
				t.Errorf("got %s, want %s", a, b)
			}
		})
	}
}

// FuzzDecodeDeltaEntry checks that decoding never panics and that what
// decodes re-encodes (as the store's JSON) to the same entry.
func FuzzDecodeDeltaEntry(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeDeltaEntry(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		e2, err := DecodeDeltaEntry(out)
		if err != nil {
			t.Fatalf("decode of re-encoded %s: %v", out, err)
		}
		out2, _ := json.Marshal(e2)
		if string(out) != string(out2) {
			t.Fatalf("round trip changed %s to %s", out, out2)
		}
	})
}
