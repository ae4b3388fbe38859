package event

import (
	"math"
	"testing"
	"time"
)

func TestTimeRuleJudge(t *testing.T) {
	r := DefaultTimeRule()
	const rt = int64(1_800_000_000_000)
	h := time.Hour.Milliseconds()
	cases := []struct {
		name   string
		ts     int64
		wantTS int64
		want   Verdict
	}{
		{"on time", rt - 1000, rt - 1000, OnTime},
		{"5m ahead", rt + 5*60_000, rt + 5*60_000, OnTime},
		{"past 5m ahead", rt + 5*60_000 + 1, rt, FutureClamped},
		{"year 3000", 32503680000000, rt, FutureClamped},
		{"24h late", rt - 24*h, rt - 24*h, OnTime},
		{"past 24h late", rt - 24*h - 1, rt - 24*h - 1, TooLate},
		{"1970", 0, 0, TooLate},
		{"min int64", math.MinInt64, math.MinInt64, TooLate},
		{"max int64", math.MaxInt64, rt, FutureClamped},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts, v := r.Judge(tc.ts, rt)
			if ts != tc.wantTS || v != tc.want {
				t.Fatalf("Judge(%d) = %d, %d; want %d, %d", tc.ts, ts, v, tc.wantTS, tc.want)
			}
		})
	}
}

// TestTimeRuleReceivedWithin checks the receive window holds every rt at
// which an event counted at a time in the range can arrive, and saturates.
func TestTimeRuleReceivedWithin(t *testing.T) {
	r := DefaultTimeRule()
	from, to := int64(1_800_000_000_000), int64(1_800_003_600_000)
	lo, hi := r.ReceivedWithin(from, to)
	for _, c := range []struct{ ts, rt int64 }{
		{from, from - r.MaxFuture.Milliseconds()},
		{to - 1, to - 1 + r.AllowedLateness.Milliseconds()},
	} {
		if _, v := r.Judge(c.ts, c.rt); v != OnTime {
			t.Fatalf("Judge(%d, %d) = %d, want on time", c.ts, c.rt, v)
		}
		if c.rt < lo || c.rt >= hi {
			t.Fatalf("rt %d outside [%d, %d)", c.rt, lo, hi)
		}
	}
	if lo, hi := r.ReceivedWithin(math.MinInt64, math.MaxInt64); lo != math.MinInt64 || hi != math.MaxInt64 {
		t.Fatalf("no saturation: [%d, %d)", lo, hi)
	}
}

func TestTimeRuleWithDefaults(t *testing.T) {
	def := DefaultTimeRule()
	for _, tc := range []struct {
		name     string
		in, want TimeRule
	}{
		{"zero", TimeRule{}, def},
		{"negative", TimeRule{AllowedLateness: -1, MaxFuture: -1}, def},
		{"set", TimeRule{AllowedLateness: time.Hour, MaxFuture: time.Second}, TimeRule{AllowedLateness: time.Hour, MaxFuture: time.Second}},
		{"one set", TimeRule{MaxFuture: time.Second}, TimeRule{AllowedLateness: def.AllowedLateness, MaxFuture: time.Second}},
	} {
		if got := tc.in.WithDefaults(); got != tc.want {
			t.Errorf("%s: %+v.WithDefaults() = %+v, want %+v", tc.name, tc.in, got, tc.want)
		}
	}
}
