package metric

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCutValue(t *testing.T) {
	keep := MaxValueBytes - len(CutMark) // 253 bytes before the mark
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "short value is kept", in: "/pricing", want: "/pricing"},
		{name: "exactly the limit is kept", in: strings.Repeat("a", MaxValueBytes), want: strings.Repeat("a", MaxValueBytes)},
		{name: "one byte over is cut", in: strings.Repeat("a", MaxValueBytes+1), want: strings.Repeat("a", keep) + CutMark},
		{name: "2 KB path is cut", in: "/" + strings.Repeat("x", 2047), want: "/" + strings.Repeat("x", keep-1) + CutMark},
		// "é" is 2 bytes: 252 bytes of "a" then "é" straddles byte 253.
		{name: "two-byte rune across the cut is dropped whole", in: strings.Repeat("a", keep-1) + strings.Repeat("é", 10),
			want: strings.Repeat("a", keep-1) + CutMark},
		// "€" is 3 bytes: 251 "a", then "€" at bytes 251..253.
		{name: "three-byte rune across the cut is dropped whole", in: strings.Repeat("a", keep-2) + strings.Repeat("€", 10),
			want: strings.Repeat("a", keep-2) + CutMark},
		{name: "rune ending at the cut is kept", in: strings.Repeat("a", keep-3) + strings.Repeat("€", 10),
			want: strings.Repeat("a", keep-3) + "€" + CutMark},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CutValue(tc.in)
			if got != tc.want {
				t.Fatalf("CutValue: got %d bytes %q, want %d bytes %q", len(got), got, len(tc.want), tc.want)
			}
			if len(got) > MaxValueBytes {
				t.Errorf("cut value has %d bytes, more than %d", len(got), MaxValueBytes)
			}
			if utf8.ValidString(tc.in) && !utf8.ValidString(got) {
				t.Errorf("cut value of valid UTF-8 is not valid UTF-8: %q", got)
			}
			if CutValue(got) != got {
				t.Errorf("cutting again changed %q", got)
			}
		})
	}
}

func TestLargest(t *testing.T) {
	totals := map[string]int64{"/b": 5, "/a": 5, "/c": 9, "/d": 1}
	for _, tc := range []struct {
		k    int
		want []string
	}{
		{0, []string{}},
		{2, []string{"/c", "/a"}}, // ties to the smaller value
		{10, []string{"/c", "/a", "/b", "/d"}},
	} {
		if got := Largest(totals, tc.k); !slices.Equal(got, tc.want) {
			t.Errorf("Largest(k=%d) = %v, want %v", tc.k, got, tc.want)
		}
	}
}
