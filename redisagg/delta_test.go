package redisagg

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/pulsehq/pulse/push"
)

func TestDecodeDelta(t *testing.T) {
	cases := []struct {
		name, in string
		want     push.Delta
		wantErr  bool
	}{
		{name: "as apply.lua writes it", in: `{"n":3,"metric":"pageviews","points":[{"step":"10s","t":1764258000000,"labels":{},"add":3,"value":57},{"step":"10s","t":1764258000000,"labels":{"path":"\/x"},"add":1,"value":2}]}`,
			want: push.Delta{N: 3, Points: []push.DeltaPoint{
				{Step: "10s", T: 1764258000000, Add: 3, Value: 57},
				{Step: "10s", T: 1764258000000, Label: push.Label{Dim: "path", Value: "/x"}, Add: 1, Value: 2}}}},
		{name: "negative add", in: `{"n":1,"metric":"e","points":[{"step":"1m","t":60000,"labels":{"type":"a\"b"},"add":-2,"value":0}]}`,
			want: push.Delta{N: 1, Points: []push.DeltaPoint{{Step: "1m", T: 60000, Label: push.Label{Dim: "type", Value: `a"b`}, Add: -2, Value: 0}}}},
		{name: "exponent number", in: `{"n":1,"metric":"e","points":[{"step":"1m","t":1.764258e+12,"labels":{},"add":1,"value":1}]}`, wantErr: true},
		{name: "fractional n", in: `{"n":1.5,"metric":"e","points":[]}`, wantErr: true},
		{name: "no n", in: `{"metric":"e","points":[]}`, wantErr: true},
		{name: "label not a string", in: `{"n":1,"metric":"e","points":[{"labels":{"a":1}}]}`, wantErr: true},
		{name: "two dimensions", in: `{"n":1,"metric":"e","points":[{"labels":{"a":"1","b":"2"}}]}`, wantErr: true},
		{name: "empty dimension name", in: `{"n":1,"metric":"e","points":[{"labels":{"":"x"}}]}`, wantErr: true},
		{name: "not json", in: `nope`, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeDelta([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				if !errors.Is(err, push.ErrBadDelta) {
					t.Fatalf("err = %v, want it to wrap push.ErrBadDelta", err)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzDecodeDelta checks that decoding never panics and that what decodes
// re-encodes to JSON that decodes to the same delta.
func FuzzDecodeDelta(f *testing.F) {
	f.Add([]byte(`{"n":3,"metric":"pageviews","points":[{"step":"10s","t":1764258000000,"labels":{"path":"\/x"},"add":1,"value":2}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDelta(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		d2, err := DecodeDelta(out)
		if err != nil {
			t.Fatalf("decode of re-encoded %s: %v", out, err)
		}
		if !reflect.DeepEqual(d, d2) {
			t.Fatalf("round trip changed %+v to %+v", d, d2)
		}
	})
}
