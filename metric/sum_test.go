package metric

import (
	"testing"
)

func TestScaled(t *testing.T) {
	tests := []struct {
		name     string
		v        any
		decimals int
		want     int64
		ok       bool
	}{
		{"price", 19.99, 2, 1999, true},
		{"price as a string", "19.99", 2, 1999, true},
		{"whole number", 5.0, 2, 500, true},
		{"negative", -5.01, 2, -501, true},
		{"plus sign", "+3", 0, 3, true},
		{"leading zeros", "007.5", 1, 75, true},
		{"rounded half away from zero", 0.125, 2, 13, true},
		{"rounded half away from zero, negative", "-0.125", 2, -13, true},
		{"rounded down", 0.124999, 2, 12, true},
		{"six decimals", 0.000001, 6, 1, true},
		{"below the precision", 0.0000001, 6, 0, true},
		{"zero decimals", 2.5, 0, 3, true},
		{"the largest value", 1e9, 6, 1e15, true},
		{"past the largest value", 1000000000.01, 2, 0, false},
		{"rounds past the largest value", "1000000000.005", 2, 0, false},
		{"too large", 1e12, 0, 0, false},
		{"eleven digits", "01000000000", 0, 1e9, true},
		{"exponent", "1e3", 0, 0, false},
		{"no digits", "-", 2, 0, false},
		{"dot only", ".", 2, 0, false},
		{"no integer part", ".5", 2, 0, false},
		{"no fraction after the dot", "5.", 2, 0, false},
		{"words", "free", 2, 0, false},
		{"bool", true, 2, 0, false},
		{"missing", nil, 2, 0, false},
		{"too many decimals asked", 1.0, 7, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Scaled(tt.v, tt.decimals)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("Scaled(%v, %d) = %d, %v; want %d, %v", tt.v, tt.decimals, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestFormatScaled(t *testing.T) {
	tests := []struct {
		n        int64
		decimals int
		want     string
	}{
		{6498, 2, "64.98"},
		{6490, 2, "64.9"},
		{6400, 2, "64"},
		{-501, 2, "-5.01"},
		{-1, 6, "-0.000001"},
		{0, 2, "0"},
		{7, 0, "7"},
		{MaxScaled, 6, "9007199254.740991"},
	}
	for _, tt := range tests {
		if got := FormatScaled(tt.n, tt.decimals); got != tt.want {
			t.Errorf("FormatScaled(%d, %d) = %q, want %q", tt.n, tt.decimals, got, tt.want)
		}
	}
}

func TestAddScaled(t *testing.T) {
	tests := []struct{ a, b, want int64 }{
		{1, 2, 3},
		{MaxScaled, 1, MaxScaled},
		{-MaxScaled, -1e15, -MaxScaled},
		{MaxScaled, -1, MaxScaled - 1},
	}
	for _, tt := range tests {
		if got := AddScaled(tt.a, tt.b); got != tt.want {
			t.Errorf("AddScaled(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
