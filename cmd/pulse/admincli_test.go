package main

import (
	"testing"
	"time"
)

func TestParseRange(t *testing.T) {
	now := time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	cases := []struct {
		from, to     string
		wantF, wantT int64
		wantErr      bool
	}{
		{"-2h", "", ms(now.Add(-2 * time.Hour)), ms(now), false},
		{"-7d", "now", ms(now.Add(-7 * 24 * time.Hour)), ms(now), false},
		{"2026-11-27T18:00:00Z", "2026-11-27T19:00:00Z", ms(now.Add(-2 * time.Hour)), ms(now.Add(-time.Hour)), false},
		{"1000", "2000", 1000, 2000, false},
		{"-1h", "-2h", 0, 0, true},
		{"yesterday", "", 0, 0, true},
		{"-xd", "", 0, 0, true},
	}
	for _, c := range cases {
		f, to, err := parseRange(c.from, c.to, now)
		if (err != nil) != c.wantErr || !c.wantErr && (f != c.wantF || to != c.wantT) {
			t.Errorf("parseRange(%q, %q) = %d, %d, %v; want %d, %d, error %v", c.from, c.to, f, to, err, c.wantF, c.wantT, c.wantErr)
		}
	}
}
