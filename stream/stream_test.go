package stream

import (
	"slices"
	"testing"
)

func TestCompareSeq(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "1", -1}, {"9", "10", -1}, {"10", "9", 1}, {"12", "12", 0},
		{"49590338271490256608559692538361571095921575989136588898", "49590338271490256608559692538361571095921575989136588899", -1},
	}
	for _, tt := range tests {
		if got := CompareSeq(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareSeq(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestStartable(t *testing.T) {
	shards := []Shard{
		{ID: "a", Closed: true},
		{ID: "b", Parents: []string{"a"}},
		{ID: "c", Parents: []string{"a", "x"}}, // x trimmed: not listed
		{ID: "d", Parents: []string{"gone"}},
	}
	tests := []struct {
		name           string
		running, ended []string
		want           []string
	}{
		{"fresh", nil, nil, []string{"a", "d"}},
		{"parent running", []string{"a"}, nil, []string{"d"}},
		{"parent ended", []string{"d"}, []string{"a"}, []string{"b", "c"}},
		{"all ended or running", []string{"b", "c"}, []string{"a", "d"}, nil},
	}
	set := func(ids []string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Startable(shards, set(tc.running), set(tc.ended)); !slices.Equal(got, tc.want) {
				t.Errorf("Startable = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPrevSeq(t *testing.T) {
	for in, want := range map[string]string{"": "", "0": "", "1": "", "2": "1", "10": "9", "100": "99", "4720": "4719", "49590338271490256608559692538361571095921575989136588898": "49590338271490256608559692538361571095921575989136588897"} {
		if got := PrevSeq(in); got != want {
			t.Errorf("PrevSeq(%q) = %q, want %q", in, got, want)
		}
	}
}
