package stats

import (
	"encoding/json"
	"testing"
	"time"
)

// now is a Monday afternoon; Europe/Berlin is an hour ahead.
var now = time.Date(2026, 12, 7, 14, 30, 15, 0, time.UTC)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// body is a valid minimal query with the keys of extra (a JSON object)
// added or replaced; a key whose value is the string "-" is removed.
func body(t testing.TB, extra string) []byte {
	t.Helper()
	m := map[string]json.RawMessage{
		"site_id":    json.RawMessage(`"demo"`),
		"metrics":    json.RawMessage(`["visitors"]`),
		"date_range": json.RawMessage(`"day"`),
	}
	if extra != "" {
		var x map[string]json.RawMessage
		if err := json.Unmarshal([]byte(extra), &x); err != nil {
			t.Fatalf("test body %s: %v", extra, err)
		}
		for k, v := range x {
			if string(v) == `"-"` {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t testing.TB, extra string, at time.Time) Query {
	t.Helper()
	q, err := Parse(body(t, extra), at)
	if err != nil {
		t.Fatalf("Parse(%s): %v", extra, err)
	}
	return q
}
