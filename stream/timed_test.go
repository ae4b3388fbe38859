package stream

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestTimedPublisher(t *testing.T) {
	full := errors.New("disk full")
	cases := []struct {
		name    string
		results []error // what the backend answers, publish by publish
		errors  float64 // pulse_stream_put_errors_total wanted
	}{
		{"all durable", []error{nil, nil, nil}, 0},
		{"one refused", []error{nil, full}, 1},
		{"all refused", []error{full, full}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			calls := 0
			backend := PublisherFunc(func(_ context.Context, e []Entry) error {
				calls++
				return tc.results[calls-1]
			})
			p := NewTimedPublisher(backend, "kinesis", reg)
			for _, want := range tc.results {
				if err := p.Publish(t.Context(), []Entry{{Key: "k", Data: []byte("d")}}); !errors.Is(err, want) {
					t.Fatalf("Publish = %v, want %v", err, want)
				}
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, mf := range mfs {
				m := mf.GetMetric()[0]
				if l := m.GetLabel(); len(l) != 1 || l[0].GetName() != "backend" || l[0].GetValue() != "kinesis" {
					t.Errorf("%s labels %v, want backend=kinesis", mf.GetName(), l)
				}
				switch mf.GetName() {
				case "pulse_stream_put_seconds":
					got[mf.GetName()] = float64(m.GetHistogram().GetSampleCount())
				case "pulse_stream_put_errors_total":
					got[mf.GetName()] = m.GetCounter().GetValue()
				}
			}
			if got["pulse_stream_put_seconds"] != float64(len(tc.results)) || got["pulse_stream_put_errors_total"] != tc.errors {
				t.Errorf("exported %v, want %d puts timed and %v errors", got, len(tc.results), tc.errors)
			}
		})
	}
}
