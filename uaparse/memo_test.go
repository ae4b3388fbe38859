package uaparse

import (
	"strings"
	"testing"
)

// TestMemo: a User-Agent is worked out once while it is remembered, one
// longer than maxMemoAgent every time, and each gets its own answer.
func TestMemo(t *testing.T) {
	calls := map[string]int{}
	m := NewMemo(func(ua string) int { calls[ua]++; return len(ua) })
	long := strings.Repeat("x", maxMemoAgent+1)
	for _, tc := range []struct {
		ua    string
		calls int
	}{
		{"Mozilla/5.0 A", 1},
		{"Mozilla/5.0 A", 1},
		{"Mozilla/5.0 B", 1},
		{"", 1},
		{"", 1},
		{long, 1},
		{long, 2},
	} {
		if got := m.Of(tc.ua); got != len(tc.ua) {
			t.Errorf("Of(%.20q) = %d, want %d", tc.ua, got, len(tc.ua))
		}
		if calls[tc.ua] != tc.calls {
			t.Errorf("after Of(%.20q): worked out %d times, want %d", tc.ua, calls[tc.ua], tc.calls)
		}
	}
}
