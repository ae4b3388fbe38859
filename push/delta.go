package push

import (
	"encoding/json"
	"fmt"
)

// Delta is one entry of the delta log of a site's metric: what one applied
// commit changed. N rises by one per entry of the (site, metric); it is the
// seq subscriptions count in. A Source hands the hub Deltas, decoded once;
// the hub never changes one it was given.
//
// The JSON form is the one the Redis aggregate store writes into its log
// and onto its channel (redisagg's apply.lua), for example
//
//	{"n":3,"metric":"pageviews","points":[{"step":"10s","t":1764258000000,"labels":{},"add":3,"value":57},
//	 {"step":"10s","t":1764258000000,"labels":{"path":"/x"},"add":1,"value":2}]}
//
// ("metric" repeats the key's metric; a Delta does not keep it).
type Delta struct {
	N      int64        `json:"n"`
	Points []DeltaPoint `json:"points"`
}

// DeltaPoint is one changed bucket: Add is the change, Value the bucket's
// new total for Label.
type DeltaPoint struct {
	Step  string `json:"step"`
	T     int64  `json:"t"` // bucket start, ms
	Label Label  `json:"labels"`
	Add   int64  `json:"add"`
	Value int64  `json:"value"`
}

// Label is the labels of a point: the zero Label is the metric's total
// ({} in JSON), otherwise one value of one dimension ({"path":"/x"}). The
// store never writes more than one dimension per point; unique metrics
// have only the total.
type Label struct{ Dim, Value string }

// MarshalJSON writes the labels object.
func (l Label) MarshalJSON() ([]byte, error) { return l.appendJSON(nil), nil }

// UnmarshalJSON reads a labels object of at most one key; null leaves l
// as it is, as encoding/json does for other types.
func (l *Label) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "{}":
		*l = Label{}
		return nil
	case "null":
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("labels: %w", err)
	}
	if len(m) > 1 {
		return fmt.Errorf("labels %.80s: %d dimensions, at most one", b, len(m))
	}
	*l = Label{}
	for k, v := range m {
		if k == "" {
			return fmt.Errorf("labels %.80s: empty dimension name", b)
		}
		*l = Label{Dim: k, Value: v}
	}
	return nil
}

// appendJSON appends the labels object as encoding/json writes it, the
// form clients have always received.
func (l Label) appendJSON(buf []byte) []byte {
	if l.Dim == "" {
		return append(buf, "{}"...)
	}
	buf = append(buf, '{')
	buf = appendJSONString(buf, l.Dim)
	buf = append(buf, ':')
	buf = appendJSONString(buf, l.Value)
	return append(buf, '}')
}

// appendJSONString quotes s as encoding/json does (HTML-safe escapes
// included); most labels are plain ASCII and take the fast path.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(buf, b...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}
