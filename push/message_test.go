package push

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDecodeClientMessage(t *testing.T) {
	cases := []struct {
		name, in string
		want     ClientMessage
		err      string // substring; "" means success
	}{
		{name: "subscribe", in: `{"op":"subscribe","id":"s1","site":"demo","metric":"pageviews","step":"10s","window":"15m","group_by":["path"]}`,
			want: ClientMessage{Op: OpSubscribe, ID: "s1", Site: "demo", Metric: "pageviews", Step: "10s", Window: 15 * time.Minute, GroupBy: "path"}},
		{name: "subscribe since", in: `{"op":"subscribe","id":"a","site":"demo","metric":"visitors","step":"1m","window":"2d","since":42}`,
			want: ClientMessage{Op: OpSubscribe, ID: "a", Site: "demo", Metric: "visitors", Step: "1m", Window: 48 * time.Hour, Since: 42, HasSince: true}},
		{name: "empty group_by", in: `{"op":"subscribe","id":"a","site":"d","metric":"m","step":"1m","window":"1h","group_by":[]}`,
			want: ClientMessage{Op: OpSubscribe, ID: "a", Site: "d", Metric: "m", Step: "1m", Window: time.Hour}},
		{name: "unsubscribe", in: `{"op":"unsubscribe","id":"s1"}`, want: ClientMessage{Op: OpUnsubscribe, ID: "s1"}},
		{name: "auth", in: `{"op":"auth","token":"t0k"}`, want: ClientMessage{Op: OpAuth, Token: "t0k"}},
		{name: "not json", in: `hello`, err: "not a JSON object"},
		{name: "array", in: `[1]`, err: "not a JSON object"},
		{name: "unknown field", in: `{"op":"unsubscribe","id":"s1","x":1}`, err: `unknown field "x"`},
		{name: "trailing", in: `{"op":"unsubscribe","id":"s1"} {}`, err: "trailing data"},
		{name: "no op", in: `{"id":"s1"}`, err: `missing "op"`},
		{name: "bad op", in: `{"op":"publish"}`, err: `unknown op "publish"`},
		{name: "field of other op", in: `{"op":"unsubscribe","id":"s1","site":"x"}`, err: `does not take "site"`},
		{name: "token on subscribe", in: `{"op":"subscribe","id":"a","site":"d","metric":"m","step":"1m","window":"1h","token":"x"}`, err: `does not take "token"`},
		{name: "auth without token", in: `{"op":"auth"}`, err: `non-empty "token"`},
		{name: "missing id", in: `{"op":"unsubscribe"}`, err: `missing "id"`},
		{name: "long id", in: `{"op":"unsubscribe","id":"` + strings.Repeat("x", 65) + `"}`, err: "longer than 64"},
		{name: "id with space", in: `{"op":"unsubscribe","id":"a b"}`, err: "printable ASCII"},
		{name: "missing site", in: `{"op":"subscribe","id":"a","metric":"m","step":"1m","window":"1h"}`, err: `missing "site"`},
		{name: "upper site", in: `{"op":"subscribe","id":"a","site":"Demo","metric":"m","step":"1m","window":"1h"}`, err: "a-z 0-9"},
		{name: "missing window", in: `{"op":"subscribe","id":"a","site":"d","metric":"m","step":"1m"}`, err: `needs "window"`},
		{name: "bad window", in: `{"op":"subscribe","id":"a","site":"d","metric":"m","step":"1m","window":"soon"}`, err: `"window"`},
		{name: "negative window", in: `{"op":"subscribe","id":"a","site":"d","metric":"m","step":"1m","window":"-5m"}`, err: `"window"`},
		{name: "huge window", in: `{"op":"subscribe","id":"a","site":"d","metric":"m","step":"1m","window":"401d"}`, err: `"window"`},
		{name: "two dims", in: `{"op":"subscribe","id":"a","site":"d","metric":"m","step":"1m","window":"1h","group_by":["path","device"]}`, err: "at most one"},
		{name: "group_by string", in: `{"op":"subscribe","id":"a","site":"d","metric":"m","step":"1m","window":"1h","group_by":"path"}`, err: "not a JSON object"},
		{name: "negative since", in: `{"op":"subscribe","id":"a","site":"d","metric":"m","step":"1m","window":"1h","since":-1}`, err: `"since"`},
		{name: "float since", in: `{"op":"subscribe","id":"a","site":"d","metric":"m","step":"1m","window":"1h","since":1.5}`, err: `"since"`},
		{name: "live query", in: `{"op":"subscribe","id":"q1","query":{"site_id":"demo","metrics":["events"],"date_range":"day"}}`,
			want: ClientMessage{Op: OpSubscribe, ID: "q1", Query: `{"site_id":"demo","metrics":["events"],"date_range":"day"}`}},
		{name: "live query since", in: `{"op":"subscribe","id":"q1","query":{},"since":7}`,
			want: ClientMessage{Op: OpSubscribe, ID: "q1", Query: `{}`, Since: 7, HasSince: true}},
		{name: "live query not an object", in: `{"op":"subscribe","id":"q1","query":["events"]}`, err: `"query" must be a JSON object`},
		{name: "live query null", in: `{"op":"subscribe","id":"q1","query":null}`, err: `missing "site"`}, // null is no query: the site/metric form
		{name: "live query string", in: `{"op":"subscribe","id":"q1","query":"{}"}`, err: `"query" must be a JSON object`},
		{name: "live query too long", in: `{"op":"subscribe","id":"q1","query":{"site_id":"` + strings.Repeat("x", maxQueryBytes) + `"}}`, err: `"query" is longer than`},
		{name: "live query and site", in: `{"op":"subscribe","id":"q1","query":{},"site":"demo"}`, err: `does not take "site"`},
		{name: "live query and window", in: `{"op":"subscribe","id":"q1","query":{},"window":"1h"}`, err: `does not take "window"`},
		{name: "live query without id", in: `{"op":"subscribe","query":{}}`, err: `missing "id"`},
		{name: "live query bad since", in: `{"op":"subscribe","id":"q1","query":{},"since":-2}`, err: `"since"`},
		{name: "string since", in: `{"op":"subscribe","id":"a","site":"d","metric":"m","step":"1m","window":"1h","since":"3"}`, err: `"since"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeClientMessage([]byte(c.in))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrBadMessage) {
					t.Fatalf("err = %v, want ErrBadMessage containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func FuzzDecodeClientMessage(f *testing.F) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeClientMessage")
	if _, err := os.Stat(dir); err != nil {
		f.Fatalf("seed corpus missing: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeClientMessage(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error does not wrap ErrBadMessage: %v", err)
			}
			return
		}
		switch m.Op {
		case OpAuth:
			if m.Token == "" {
				t.Fatal("auth without token accepted")
			}
		case OpUnsubscribe:
			if m.ID == "" || len(m.ID) > 64 {
				t.Fatalf("bad id accepted: %q", m.ID)
			}
		case OpSubscribe:
			if m.Query != "" {
				if m.ID == "" || m.Query[0] != '{' || len(m.Query) > maxQueryBytes || m.Site != "" || m.Since < 0 {
					t.Fatalf("invalid live subscribe accepted: %+v", m)
				}
				return
			}
			if m.ID == "" || m.Site == "" || m.Metric == "" || m.Step == "" || m.Window <= 0 || m.Window > maxWindow || m.Since < 0 {
				t.Fatalf("invalid subscribe accepted: %+v", m)
			}
		default:
			t.Fatalf("unknown op accepted: %q", m.Op)
		}
	})
}
