package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// PulseProtocol subscribes to one metric of Pulse's /v1/ws (see package
// push) and reads the running total of the subscription: the sum over
// buckets (and labels) of each bucket's latest exact value, starting from the
// snapshot. Counts only grow, so the total is a watermark of what has been
// aggregated.
type PulseProtocol struct {
	Site, Metric, Step, Window string // Step default "10s", Window default "15m"
}

// Open implements WSProtocol.
func (p PulseProtocol) Open() WSSession {
	if p.Step == "" {
		p.Step = "10s"
	}
	if p.Window == "" {
		p.Window = "15m"
	}
	return &pulseSession{p: p, buckets: map[string]float64{}}
}

type pulseSession struct {
	p       PulseProtocol
	buckets map[string]float64 // by t and labels
	total   float64
}

type pulseMsg struct {
	Op      string `json:"op"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Series  []struct {
		Labels map[string]string `json:"labels"`
		Points [][2]float64      `json:"points"`
	} `json:"series"`
	Points []struct {
		Labels map[string]string `json:"labels"`
		T      int64             `json:"t"`
		Value  float64           `json:"value"`
	} `json:"points"`
}

func (s *pulseSession) Start() [][]byte {
	m, _ := json.Marshal(map[string]string{"op": "subscribe", "id": "s1", "site": s.p.Site, "metric": s.p.Metric, "step": s.p.Step, "window": s.p.Window})
	return [][]byte{m}
}

func (s *pulseSession) Handle(frame []byte) (Frame, error) {
	var m pulseMsg
	if err := json.Unmarshal(frame, &m); err != nil {
		return Frame{}, fmt.Errorf("pulse: decode %.80q: %w", frame, err)
	}
	switch m.Op {
	case "snapshot":
		clear(s.buckets)
		s.total = 0
		for _, sr := range m.Series {
			for _, pt := range sr.Points {
				s.set(int64(pt[0]), sr.Labels, pt[1])
			}
		}
		return Frame{Ready: true, Total: s.watermark()}, nil
	case "delta":
		for _, pt := range m.Points {
			s.set(pt.T, pt.Labels, pt.Value)
		}
		return Frame{Pushes: 1, Total: s.watermark()}, nil
	case "error":
		return Frame{}, fmt.Errorf("pulse: error %s: %s", m.Code, m.Message)
	default:
		return Frame{}, nil
	}
}

func (s *pulseSession) set(t int64, labels map[string]string, v float64) {
	k := strconv.FormatInt(t, 10)
	if len(labels) > 0 {
		names := make([]string, 0, len(labels))
		for n := range labels {
			names = append(names, n)
		}
		slices.Sort(names)
		var b strings.Builder
		b.WriteString(k)
		for _, n := range names {
			b.WriteString("\x00" + n + "=" + labels[n])
		}
		k = b.String()
	}
	s.total += v - s.buckets[k]
	s.buckets[k] = v
}

func (s *pulseSession) watermark() int64 { return int64(math.Round(s.total)) }

// CentrifugoProtocol speaks Centrifugo's JSON client protocol (v2, the one
// of Centrifugo v4 and later): connect anonymously, subscribe to Channel, and
// read publications whose data carries {"n":N}, N the publication's
// cumulative number, which is the watermark. Frames may hold several
// newline-separated replies; an empty object is a ping, answered with one.
type CentrifugoProtocol struct {
	Channel string
}

// Open implements WSProtocol.
func (p CentrifugoProtocol) Open() WSSession { return &centrifugoSession{channel: p.Channel} }

type centrifugoSession struct {
	channel string
	high    int64
}

type centrifugoReply struct {
	ID    uint32 `json:"id"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Subscribe *json.RawMessage `json:"subscribe"`
	Push      *struct {
		Channel string `json:"channel"`
		Pub     *struct {
			Data struct {
				N int64 `json:"n"`
			} `json:"data"`
		} `json:"pub"`
	} `json:"push"`
}

func (s *centrifugoSession) Start() [][]byte {
	sub, _ := json.Marshal(map[string]any{"id": 2, "subscribe": map[string]string{"channel": s.channel}})
	return [][]byte{[]byte(`{"id":1,"connect":{}}`), sub}
}

func (s *centrifugoSession) Handle(frame []byte) (Frame, error) {
	var fr Frame
	for line := range bytes.SplitSeq(frame, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if bytes.Equal(line, []byte("{}")) {
			fr.Reply = []byte("{}")
			continue
		}
		var r centrifugoReply
		if err := json.Unmarshal(line, &r); err != nil {
			return Frame{}, fmt.Errorf("centrifugo: decode %.80q: %w", line, err)
		}
		switch {
		case r.Error != nil:
			return Frame{}, fmt.Errorf("centrifugo: command %d: error %d: %s", r.ID, r.Error.Code, r.Error.Message)
		case r.ID == 2 && r.Subscribe != nil:
			fr.Ready = true
		case r.Push != nil && r.Push.Pub != nil && r.Push.Channel == s.channel:
			fr.Pushes++
			s.high = max(s.high, r.Push.Pub.Data.N)
		}
	}
	fr.Total = s.high
	return fr, nil
}
