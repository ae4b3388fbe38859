package push

import (
	"encoding/json"
	"strconv"
)

// pointKey is what merging keys a point by; a topic's points all have its
// step.
type pointKey struct {
	t     int64
	label Label
}

func keyOf(p DeltaPoint) pointKey { return pointKey{p.T, p.Label} }

// entryPoints are the points of one log entry that one topic selects.
type entryPoints struct {
	n      int64
	points []DeltaPoint
}

// batch is a delta over the log entries from..seq, shared by every
// subscriber whose chain it continues; body is immutable once built.
type batch struct {
	from, seq int64
	points    []DeltaPoint
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
			k := keyOf(p)
			if i, dup := idx[k]; dup {
				b.points[i].Add += p.Add
				b.points[i].Value = p.Value
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

func encodeBody(from, seq int64, pts []DeltaPoint) []byte {
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
		buf = p.Label.appendJSON(buf)
		buf = append(buf, `,"t":`...)
		buf = strconv.AppendInt(buf, p.T, 10)
		buf = append(buf, `,"add":`...)
		buf = strconv.AppendInt(buf, p.Add, 10)
		buf = append(buf, `,"value":`...)
		buf = strconv.AppendInt(buf, p.Value, 10)
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

type snapshotMsg struct {
	Op     string   `json:"op"`
	ID     string   `json:"id"`
	Seq    int64    `json:"seq"`
	Series []Series `json:"series"`
	Reset  bool     `json:"reset,omitempty"`
}

type errorMsg struct {
	Op      string `json:"op"`
	ID      string `json:"id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Part names the part of a live query's body that bad_query refuses,
	// as POST /v1/stats's 400 does.
	Part string `json:"part,omitempty"`
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

func encodeSnapshot(id string, seq int64, series []Series, reset bool) []byte {
	if series == nil {
		series = []Series{}
	}
	b, _ := json.Marshal(snapshotMsg{Op: "snapshot", ID: id, Seq: seq, Series: series, Reset: reset})
	return b
}

func encodeError(id, code, msg string) []byte {
	b, _ := json.Marshal(errorMsg{Op: "error", ID: id, Code: code, Message: msg})
	return b
}
