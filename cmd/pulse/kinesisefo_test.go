package main

import (
	"strings"
	"testing"
)

// TestKinesisEFOFlag: --kinesis-efo (or PULSE_KINESIS_EFO) names the
// enhanced fan-out consumer of a kinesis:// stream; empty means polling;
// with a local stream it is a mistake, not silently ignored.
func TestKinesisEFOFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"default polls", []string{"serve", "--stream", "kinesis://events"}, nil, "", ""},
		{"flag", []string{"serve", "--stream", "kinesis://events", "--kinesis-efo", "pulse-agg"}, nil, "pulse-agg", ""},
		{"env", []string{"serve"}, map[string]string{"PULSE_STREAM": "kinesis://events", "PULSE_KINESIS_EFO": "pulse-agg"}, "pulse-agg", ""},
		{"local stream", []string{"serve", "--kinesis-efo", "pulse-agg"}, nil, "", "--kinesis-efo: needs --stream kinesis://NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServe(t, tt.args, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.KinesisEFO != tt.want {
				t.Fatalf("KinesisEFO %q, want %q", cfg.KinesisEFO, tt.want)
			}
		})
	}
}
