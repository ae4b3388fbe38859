package redisagg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// DeltaEntry is one entry of a delta log (and one pub/sub message): what one
// applied commit changed in one site's metric. N rises by one per entry of
// the site's metric.
type DeltaEntry struct {
	N      int64        `json:"n"`
	Metric string       `json:"metric"`
	Points []DeltaPoint `json:"points"`
}

// DeltaPoint is one changed bucket: Add is the change, Value the new total of
// the bucket for Labels ({} for the metric's total, {dim: value} for one
// dimension value; unique metrics have only the total).
type DeltaPoint struct {
	Step   string            `json:"step"`
	T      int64             `json:"t"`
	Labels map[string]string `json:"labels"`
	Add    int64             `json:"add"`
	Value  int64             `json:"value"`
}

// wire mirrors the JSON the Lua cjson writes: Redis' cjson encodes an empty
// labels table as {} while other Lua JSON encoders write [], and large
// numbers may come in exponent form, so both are accepted.
type wireEntry struct {
	N      json.Number `json:"n"`
	Metric string      `json:"metric"`
	Points []wirePoint `json:"points"`
}

type wirePoint struct {
	Step   string          `json:"step"`
	T      json.Number     `json:"t"`
	Labels json.RawMessage `json:"labels"`
	Add    json.Number     `json:"add"`
	Value  json.Number     `json:"value"`
}

// DecodeDeltaEntry decodes the JSON of a delta log entry or message.
func DecodeDeltaEntry(b []byte) (DeltaEntry, error) {
	var w wireEntry
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return DeltaEntry{}, fmt.Errorf("decode delta entry: %w", err)
	}
	var e DeltaEntry
	var err error
	if e.N, err = intOf(w.N); err != nil {
		return DeltaEntry{}, fmt.Errorf("decode delta entry: n: %w", err)
	}
	e.Metric = w.Metric
	// A points table that was empty is encoded as {} by Redis' cjson; the
	// store never writes one, so it is simply not allowed here.
	e.Points = make([]DeltaPoint, len(w.Points))
	for i, p := range w.Points {
		dp := DeltaPoint{Step: p.Step, Labels: map[string]string{}}
		if dp.T, err = intOf(p.T); err != nil {
			return DeltaEntry{}, fmt.Errorf("decode delta entry %d point %d: t: %w", e.N, i, err)
		}
		if dp.Add, err = intOf(p.Add); err != nil {
			return DeltaEntry{}, fmt.Errorf("decode delta entry %d point %d: add: %w", e.N, i, err)
		}
		if dp.Value, err = intOf(p.Value); err != nil {
			return DeltaEntry{}, fmt.Errorf("decode delta entry %d point %d: value: %w", e.N, i, err)
		}
		if l := bytes.TrimSpace(p.Labels); len(l) > 0 && !bytes.Equal(l, []byte("[]")) && !bytes.Equal(l, []byte("null")) {
			if err := json.Unmarshal(l, &dp.Labels); err != nil {
				return DeltaEntry{}, fmt.Errorf("decode delta entry %d point %d: labels: %w", e.N, i, err)
			}
			if dp.Labels == nil {
				dp.Labels = map[string]string{}
			}
		}
		e.Points[i] = dp
	}
	return e, nil
}

func intOf(n json.Number) (int64, error) {
	if n == "" {
		return 0, nil
	}
	if v, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return v, nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("%s is not an exact integer", n)
	}
	return int64(f), nil
}
