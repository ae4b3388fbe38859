package loadgen

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

var _ WSProtocol = PulseProtocol{}
var _ WSProtocol = CentrifugoProtocol{}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestDurationsPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(100 - i) // unsorted on purpose: 100ms .. 1ms
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one", []time.Duration{ms(7)}, 50, ms(7)},
		{"one p99", []time.Duration{ms(7)}, 99, ms(7)},
		{"hundred p50", hundred, 50, ms(50)},
		{"hundred p99", hundred, 99, ms(99)},
		{"hundred p100", hundred, 100, ms(100)},
		{"hundred p1", hundred, 1, ms(1)},
		{"two p50 rounds to the lower", []time.Duration{ms(2), ms(1)}, 50, ms(1)},
		{"three p99 is the max", []time.Duration{ms(3), ms(1), ms(2)}, 99, ms(3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := SortedDurations(slices.Clone(tt.in))
			if got := d.Percentile(tt.p); got != tt.want {
				t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestLags(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC)
	at := func(n int) time.Time { return t0.Add(ms(n)) }
	tests := []struct {
		name       string
		marks      []Mark
		readings   []Reading
		want       []time.Duration
		wantMissed int
	}{
		{
			name:     "each mark reached by the next reading",
			marks:    []Mark{{at(0), 50}, {at(10), 100}},
			readings: []Reading{{at(30), 50}, {at(60), 100}},
			want:     []time.Duration{ms(30), ms(50)},
		},
		{
			name:     "one reading covers several marks",
			marks:    []Mark{{at(0), 50}, {at(10), 100}, {at(20), 150}},
			readings: []Reading{{at(70), 150}},
			want:     []time.Duration{ms(70), ms(60), ms(50)},
		},
		{
			name:     "a reading short of the mark does not count",
			marks:    []Mark{{at(0), 100}},
			readings: []Reading{{at(5), 99}, {at(40), 120}},
			want:     []time.Duration{ms(40)},
		},
		{
			name:       "never reached",
			marks:      []Mark{{at(0), 50}, {at(10), 100}},
			readings:   []Reading{{at(30), 50}},
			want:       []time.Duration{ms(30)},
			wantMissed: 1,
		},
		{
			name:     "reading before the ack counts as zero",
			marks:    []Mark{{at(100), 50}},
			readings: []Reading{{at(90), 50}},
			want:     []time.Duration{0},
		},
		{
			name:     "watermark does not go back",
			marks:    []Mark{{at(0), 50}, {at(10), 60}},
			readings: []Reading{{at(20), 70}, {at(25), 40}},
			want:     []time.Duration{ms(20), ms(10)},
		},
		{
			name:     "zero mark needs nothing",
			marks:    []Mark{{at(0), 0}},
			readings: nil,
			want:     []time.Duration{0},
		},
		{
			name:       "no readings",
			marks:      []Mark{{at(0), 1}},
			wantMissed: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, missed := Lags(tt.marks, tt.readings)
			if !slices.Equal(got, tt.want) || missed != tt.wantMissed {
				t.Errorf("Lags = %v, missed %d; want %v, missed %d", got, missed, tt.want, tt.wantMissed)
			}
		})
	}
}

func TestMarks(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC)
	at := func(n int) time.Time { return t0.Add(ms(n)) }
	acks := []Ack{
		{Index: 1, Sent: at(10), Done: at(15), Events: 50, Status: 202},
		{Index: 0, Sent: at(0), Done: at(20), Events: 50, Status: 202},
		{Index: 2, Sent: at(20), Done: at(22), Events: 50, Status: 503},
		{Index: 3, Sent: at(30), Done: at(31), Events: 50, Status: 0, Failed: true},
		{Index: 4, Sent: at(40), Done: at(41), Events: 50, Status: 200, Failed: true},
		{Index: 5, Sent: at(50), Done: at(52), Events: 10, Status: 202},
	}
	tests := []struct {
		name string
		fn   func([]Ack) []Mark
		want []Mark
	}{
		{"by ack time", AckMarks, []Mark{{at(15), 50}, {at(20), 100}, {at(52), 110}}},
		{"by send order", SendMarks, []Mark{{at(0), 50}, {at(10), 100}, {at(50), 110}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fn(acks); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	s := Summarize(acks, time.Second)
	if s.Events != 110 || s.Failed != 3 || s.Status[503] != 1 || s.Requests != 6 {
		t.Errorf("Summarize = %+v", s)
	}
}

func TestPulseSession(t *testing.T) {
	tests := []struct {
		name   string
		frames []string
		want   []Frame
		err    string
	}{
		{
			name: "snapshot then deltas sum buckets",
			frames: []string{
				`{"op":"snapshot","id":"s1","seq":3,"series":[{"labels":{},"points":[[1000,5],[2000,2]]}]}`,
				`{"op":"delta","id":"s1","from":4,"seq":4,"points":[{"labels":{},"t":2000,"add":3,"value":5}]}`,
				`{"op":"delta","id":"s1","from":5,"seq":6,"points":[{"labels":{},"t":3000,"add":1,"value":1},{"labels":{},"t":1000,"add":1,"value":6}]}`,
			},
			want: []Frame{{Ready: true, Total: 7}, {Pushes: 1, Total: 10}, {Pushes: 1, Total: 12}},
		},
		{
			name: "labels are separate buckets",
			frames: []string{
				`{"op":"snapshot","id":"s1","seq":0,"series":[]}`,
				`{"op":"delta","id":"s1","from":1,"seq":1,"points":[{"labels":{"type":"a"},"t":1,"add":2,"value":2},{"labels":{"type":"b"},"t":1,"add":3,"value":3}]}`,
			},
			want: []Frame{{Ready: true}, {Pushes: 1, Total: 5}},
		},
		{
			name: "reset snapshot replaces the state",
			frames: []string{
				`{"op":"snapshot","id":"s1","seq":0,"series":[{"labels":{},"points":[[1,4]]}]}`,
				`{"op":"snapshot","id":"s1","seq":9,"reset":true,"series":[{"labels":{},"points":[[2,9]]}]}`,
			},
			want: []Frame{{Ready: true, Total: 4}, {Ready: true, Total: 9}},
		},
		{
			name:   "error",
			frames: []string{`{"op":"error","id":"s1","code":"unknown_metric","message":"no such metric"}`},
			err:    "unknown_metric",
		},
		{name: "not json", frames: []string{`{`}, err: "decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := PulseProtocol{Site: "x", Metric: "events"}.Open()
			var got []Frame
			for _, f := range tt.frames {
				fr, err := s.Handle([]byte(f))
				if err != nil {
					if tt.err == "" || !strings.Contains(err.Error(), tt.err) {
						t.Fatalf("Handle(%s): %v, want error containing %q", f, err, tt.err)
					}
					return
				}
				got = append(got, fr)
			}
			if tt.err != "" {
				t.Fatalf("no error, want %q", tt.err)
			}
			if !slices.EqualFunc(got, tt.want, frameEqual) {
				t.Errorf("frames %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCentrifugoSession(t *testing.T) {
	tests := []struct {
		name   string
		frames []string
		want   []Frame
		err    string
	}{
		{
			name: "connect, subscribe, batched pushes, ping",
			frames: []string{
				"{\"id\":1,\"connect\":{\"client\":\"c\",\"ping\":25,\"pong\":true}}\n{\"id\":2,\"subscribe\":{}}",
				`{"push":{"channel":"bench:live","pub":{"data":{"n":1,"pad":"x"}}}}`,
				"{\"push\":{\"channel\":\"bench:live\",\"pub\":{\"data\":{\"n\":3}}}}\n{\"push\":{\"channel\":\"bench:live\",\"pub\":{\"data\":{\"n\":2}}}}",
				`{}`,
				`{"push":{"channel":"other","pub":{"data":{"n":99}}}}`,
			},
			want: []Frame{{Ready: true}, {Pushes: 1, Total: 1}, {Pushes: 2, Total: 3}, {Total: 3, Reply: []byte("{}")}, {Total: 3}},
		},
		{
			name:   "subscribe refused",
			frames: []string{`{"id":2,"error":{"code":103,"message":"permission denied"}}`},
			err:    "permission denied",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := CentrifugoProtocol{Channel: "bench:live"}.Open()
			if start := s.Start(); len(start) != 2 || !strings.Contains(string(start[1]), `"channel":"bench:live"`) {
				t.Fatalf("Start = %q", start)
			}
			var got []Frame
			for _, f := range tt.frames {
				fr, err := s.Handle([]byte(f))
				if err != nil {
					if tt.err == "" || !strings.Contains(err.Error(), tt.err) {
						t.Fatalf("Handle(%s): %v, want error containing %q", f, err, tt.err)
					}
					return
				}
				got = append(got, fr)
			}
			if tt.err != "" {
				t.Fatalf("no error, want %q", tt.err)
			}
			if !slices.EqualFunc(got, tt.want, frameEqual) {
				t.Errorf("frames %+v, want %+v", got, tt.want)
			}
		})
	}
}

func frameEqual(a, b Frame) bool {
	return a.Ready == b.Ready && a.Pushes == b.Pushes && a.Total == b.Total && string(a.Reply) == string(b.Reply)
}

func FuzzPulseHandle(f *testing.F) {
	f.Add([]byte(`{"op":"delta","points":[{"labels":{},"t":1,"value":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := PulseProtocol{Site: "x", Metric: "events"}.Open()
		fr, err := s.Handle(b)
		if err == nil && fr.Ready && fr.Pushes != 0 {
			t.Fatalf("frame both ready and a push: %+v", fr)
		}
	})
}

func FuzzCentrifugoHandle(f *testing.F) {
	f.Add([]byte("{}\n{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := CentrifugoProtocol{Channel: "bench:live"}.Open()
		fr, err := s.Handle(b)
		if lines := bytes.Count(b, []byte("\n")) + 1; err == nil && fr.Pushes > lines {
			t.Fatalf("%d pushes in %d lines", fr.Pushes, lines)
		}
	})
}
