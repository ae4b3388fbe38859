package stats

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzParse checks, for any body: Parse never panics; an error is an
// *Error naming a part; an accepted query's Resolved form, marshalled and
// parsed again at the same now, gives the same query.
func FuzzParse(f *testing.F) {
	f.Add([]byte(contractBody))
	f.Add([]byte(`{"site_id":"demo","metrics":["visitors"],"date_range":"all","dimensions":["time"],"include":{"time_labels":true}}`))
	f.Add([]byte(`{"site_id":"demo","metrics":["events"],"date_range":["2026-10-25","2026-10-25"],"timezone":"Europe/Berlin","dimensions":["time:hour"]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		q, err := Parse(body, now)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Part == "" || e.Msg == "" {
				t.Fatalf("error %v (%T) is no *Error naming a part", err, err)
			}
			return
		}
		again, err := json.Marshal(q.Resolved())
		if err != nil {
			t.Fatal(err)
		}
		q2, err := Parse(again, now)
		if err != nil {
			t.Fatalf("resolved %s does not parse: %v", again, err)
		}
		if msg := diff(q, q2); msg != "" {
			t.Fatalf("resolved %s parses to another query: %s", again, msg)
		}
	})
}

// diff says how two queries differ, or "". Times compare as instants,
// locations by name and regular expressions by their source.
func diff(a, b Query) string {
	switch {
	case a.Site != b.Site:
		return "site"
	case !reflect.DeepEqual(a.Metrics, b.Metrics):
		return "metrics"
	case !reflect.DeepEqual(a.Dimensions, b.Dimensions):
		return "dimensions"
	case !a.Range.From.Equal(b.Range.From) || !a.Range.To.Equal(b.Range.To) || a.Range.AllTime != b.Range.AllTime:
		return "range"
	case a.Location.String() != b.Location.String() || a.Range.Loc.String() != b.Range.Loc.String():
		return "location"
	case !reflect.DeepEqual(a.OrderBy, b.OrderBy) || a.Include != b.Include || a.Limit != b.Limit || a.Offset != b.Offset:
		return "order_by, include or pagination"
	case !sameFilter(a.Filter, b.Filter):
		return "filters"
	}
	return ""
}

func sameFilter(a, b Filter) bool {
	if a.Op != b.Op || a.Dimension != b.Dimension || a.CaseSensitive != b.CaseSensitive ||
		!reflect.DeepEqual(a.Clauses, b.Clauses) || !reflect.DeepEqual(a.folded, b.folded) ||
		len(a.res) != len(b.res) || len(a.Children) != len(b.Children) {
		return false
	}
	for i := range a.res {
		if a.res[i].String() != b.res[i].String() {
			return false
		}
	}
	for i := range a.Children {
		if !sameFilter(a.Children[i], b.Children[i]) {
			return false
		}
	}
	return true
}

func TestResolvedRoundTrip(t *testing.T) {
	for _, extra := range []string{
		// Monrovia kept -00:44:30 until 1972: the echo must not lose the
		// seconds of the offset.
		`{"date_range":["1971-01-01","1971-01-02"],"timezone":"Africa/Monrovia"}`,
		`{"date_range":"all","timezone":"Pacific/Kiritimati","dimensions":["time:month"]}`,
		`{"date_range":"realtime","timezone":"Asia/Kathmandu","dimensions":["time:minute"]}`,
	} {
		q := mustParse(t, extra, now)
		again, err := json.Marshal(q.Resolved())
		if err != nil {
			t.Fatal(err)
		}
		q2, err := Parse(again, now)
		if err != nil {
			t.Fatalf("%s: %v", again, err)
		}
		if msg := diff(q, q2); msg != "" {
			t.Errorf("%s parses to another query: %s", again, msg)
		}
	}
}
