package push

import (
	"encoding/json"
	"strconv"

	"github.com/pulsehq/pulse/redisagg"
)

// point is one changed bucket of a topic, with its labels encoded once.
type point struct {
	labels string // JSON object, e.g. {"path":"/x"}; doubles as the merge key
	t      int64
	add    int64
	value  int64
}

type pointKey struct {
	t      int64
	labels string
}

// entryPoints are the points of one log entry that one topic selects.
type entryPoints struct {
	n      int64
	points []point
}

// batch is a delta over the log entries from..seq, shared by every
// subscriber whose chain it continues; body is immutable once built.
type batch struct {
	from, seq int64
	points    []point
	body      []byte // `"from":F,"seq":S,"points":[...]}`
}

// mergeEntries merges the points of entries with n > after: add summed,
// value the latest. ok is false when no entry is newer than after.
func mergeEntries(entries []entryPoints, after int64) (b *batch, ok bool) {
	var idx map[pointKey]int
	for _, e := range entries {
		if e.n <= after {
			continue
		}
		if b == nil {
			b = &batch{from: e.n}
			idx = map[pointKey]int{}
		}
		b.seq = e.n
		for _, p := range e.points {
			k := pointKey{p.t, p.labels}
			if i, dup := idx[k]; dup {
				b.points[i].add += p.add
				b.points[i].value = p.value
				continue
			}
			idx[k] = len(b.points)
			b.points = append(b.points, p)
		}
	}
	if b == nil {
		return nil, false
	}
	b.body = encodeBody(b.from, b.seq, b.points)
	return b, true
}

func encodeBody(from, seq int64, pts []point) []byte {
	buf := make([]byte, 0, 32+len(pts)*48)
	buf = append(buf, `"from":`...)
	buf = strconv.AppendInt(buf, from, 10)
	buf = append(buf, `,"seq":`...)
	buf = strconv.AppendInt(buf, seq, 10)
	buf = append(buf, `,"points":[`...)
	for i, p := range pts {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"labels":`...)
		buf = append(buf, p.labels...)
		buf = append(buf, `,"t":`...)
		buf = strconv.AppendInt(buf, p.t, 10)
		buf = append(buf, `,"add":`...)
		buf = strconv.AppendInt(buf, p.add, 10)
		buf = append(buf, `,"value":`...)
		buf = strconv.AppendInt(buf, p.value, 10)
		buf = append(buf, '}')
	}
	return append(buf, "]}"...)
}

// deltaPrefix is the per-subscription head of a delta message, spliced in
// front of a shared body.
func deltaPrefix(id string) []byte {
	b, _ := json.Marshal(id)
	return append(append([]byte(`{"op":"delta","id":`), b...), ',')
}

// entryPointsOf decodes a log entry's points once per feed, labels encoded.
func entryPointsOf(e redisagg.DeltaEntry) []decodedPoint {
	out := make([]decodedPoint, len(e.Points))
	for i, p := range e.Points {
		lb := []byte("{}")
		if len(p.Labels) > 0 {
			lb, _ = json.Marshal(p.Labels)
		}
		dim := ""
		if len(p.Labels) == 1 {
			for k := range p.Labels {
				dim = k
			}
		} else if len(p.Labels) > 1 {
			dim = "\x00" // matches no topic
		}
		out[i] = decodedPoint{step: p.Step, dim: dim, point: point{labels: string(lb), t: p.T, add: p.Add, value: p.Value}}
	}
	return out
}

type decodedPoint struct {
	step, dim string
	point
}

type snapshotMsg struct {
	Op     string            `json:"op"`
	ID     string            `json:"id"`
	Seq    int64             `json:"seq"`
	Series []redisagg.Series `json:"series"`
	Reset  bool              `json:"reset,omitempty"`
}

type errorMsg struct {
	Op      string `json:"op"`
	ID      string `json:"id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of error messages.
const (
	CodeBadMessage  = "bad_message"
	CodeBadQuery    = "bad_query"
	CodeLimit       = "limit"
	CodeDuplicateID = "duplicate_id"
	CodeUnknownID   = "unknown_id"
	CodeUnavailable = "unavailable"
)

func encodeSnapshot(id string, seq int64, series []redisagg.Series, reset bool) []byte {
	if series == nil {
		series = []redisagg.Series{}
	}
	b, _ := json.Marshal(snapshotMsg{Op: "snapshot", ID: id, Seq: seq, Series: series, Reset: reset})
	return b
}

func encodeError(id, code, msg string) []byte {
	b, _ := json.Marshal(errorMsg{Op: "error", ID: id, Code: code, Message: msg})
	return b
}
