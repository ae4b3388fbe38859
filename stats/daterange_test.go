package stats

import (
	"testing"
	"time"
)

func TestDateRange(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	utc := func(y int, m time.Month, d, h, min, s int) time.Time {
		return time.Date(y, m, d, h, min, s, 0, time.UTC)
	}
	ber := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, berlin) }
	tests := []struct {
		name, extra string
		at          time.Time
		from, to    time.Time
		hours       float64 // To-From, when non-zero
	}{
		{"realtime is 30 minutes", `{"date_range":"realtime"}`, now, now.Add(-30 * time.Minute), now, 0},
		{"30m", `{"date_range":"30m"}`, now, now.Add(-30 * time.Minute), now, 0},
		{"5m", `{"date_range":"5m"}`, now, now.Add(-5 * time.Minute), now, 0},
		{"24h", `{"date_range":"24h"}`, now, now.Add(-24 * time.Hour), now, 0},
		{"day UTC", `{"date_range":"day"}`, now, utc(2026, 12, 7, 0, 0, 0), utc(2026, 12, 8, 0, 0, 0), 24},
		{"7d", `{"date_range":"7d"}`, now, utc(2026, 12, 1, 0, 0, 0), utc(2026, 12, 8, 0, 0, 0), 7 * 24},
		{"28d", `{"date_range":"28d"}`, now, utc(2026, 11, 10, 0, 0, 0), utc(2026, 12, 8, 0, 0, 0), 28 * 24},
		{"30d is 31 days", `{"date_range":"30d"}`, now, utc(2026, 11, 7, 0, 0, 0), utc(2026, 12, 8, 0, 0, 0), 31 * 24},
		{"91d", `{"date_range":"91d"}`, now, utc(2026, 9, 8, 0, 0, 0), utc(2026, 12, 8, 0, 0, 0), 91 * 24},
		{"month", `{"date_range":"month"}`, now, utc(2026, 12, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0), 31 * 24},
		{"6mo", `{"date_range":"6mo"}`, now, utc(2026, 7, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0), 0},
		{"12mo", `{"date_range":"12mo"}`, now, utc(2026, 1, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0), 0},
		{"year", `{"date_range":"year"}`, now, utc(2026, 1, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0), 365 * 24},
		{"dates inclusive", `{"date_range":["2026-12-01","2026-12-07"]}`, now, utc(2026, 12, 1, 0, 0, 0), utc(2026, 12, 8, 0, 0, 0), 0},
		{"one date", `{"date_range":["2026-12-07","2026-12-07"]}`, now, utc(2026, 12, 7, 0, 0, 0), utc(2026, 12, 8, 0, 0, 0), 0},
		{"future dates kept whole", `{"date_range":["2027-01-01","2027-01-02"]}`, now, utc(2027, 1, 1, 0, 0, 0), utc(2027, 1, 3, 0, 0, 0), 0},
		{"RFC 3339 instants", `{"date_range":["2026-12-07T10:00:00+01:00","2026-12-07T11:30:00+01:00"]}`, now, utc(2026, 12, 7, 9, 0, 0), utc(2026, 12, 7, 10, 30, 0), 0},
		{"RFC 3339 fractions", `{"date_range":["2026-12-07T10:00:00.5Z","2026-12-07T10:00:01Z"]}`, now, utc(2026, 12, 7, 10, 0, 0).Add(500 * time.Millisecond), utc(2026, 12, 7, 10, 0, 1), 0},
		{"day in Berlin", `{"date_range":"day","timezone":"Europe/Berlin"}`, now, ber(2026, 12, 7), ber(2026, 12, 8), 24},
		{"day in Berlin after its midnight", `{"date_range":"day","timezone":"Europe/Berlin"}`, utc(2026, 12, 7, 23, 30, 0), ber(2026, 12, 8), ber(2026, 12, 9), 24},
		{"day in New York before its midnight", `{"date_range":"day","timezone":"America/New_York"}`, utc(2026, 12, 8, 3, 0, 0),
			time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC), time.Date(2026, 12, 8, 5, 0, 0, 0, time.UTC), 24},
		{"dates in Berlin", `{"date_range":["2026-12-01","2026-12-07"],"timezone":"Europe/Berlin"}`, now, ber(2026, 12, 1), ber(2026, 12, 8), 0},
		// Daylight saving: the day clocks go forward has 23 hours, the
		// day they go back 25.
		{"Berlin spring day", `{"date_range":"day","timezone":"Europe/Berlin"}`, utc(2026, 3, 29, 12, 0, 0), ber(2026, 3, 29), ber(2026, 3, 30), 23},
		{"Berlin autumn day", `{"date_range":"day","timezone":"Europe/Berlin"}`, utc(2026, 10, 25, 12, 0, 0), ber(2026, 10, 25), ber(2026, 10, 26), 25},
		{"Berlin spring date", `{"date_range":["2026-03-29","2026-03-29"],"timezone":"Europe/Berlin"}`, now, ber(2026, 3, 29), ber(2026, 3, 30), 23},
		{"Berlin autumn date", `{"date_range":["2026-10-25","2026-10-25"],"timezone":"Europe/Berlin"}`, now, ber(2026, 10, 25), ber(2026, 10, 26), 25},
		{"Berlin 7d across spring", `{"date_range":"7d","timezone":"Europe/Berlin"}`, utc(2026, 3, 31, 12, 0, 0), ber(2026, 3, 25), ber(2026, 4, 1), 7*24 - 1},
		{"Berlin March", `{"date_range":"month","timezone":"Europe/Berlin"}`, utc(2026, 3, 10, 0, 0, 0), ber(2026, 3, 1), ber(2026, 4, 1), 31*24 - 1},
		// Santiago skips its midnight on 2026-09-06 (00:00 is 01:00) and
		// repeats 23:00 on 2026-04-04.
		{"Santiago day without midnight", `{"date_range":"day","timezone":"America/Santiago"}`, utc(2026, 9, 6, 18, 0, 0),
			utc(2026, 9, 6, 4, 0, 0), utc(2026, 9, 7, 3, 0, 0), 23},
		{"Santiago day of 25 hours", `{"date_range":["2026-04-04","2026-04-04"],"timezone":"America/Santiago"}`, now,
			utc(2026, 4, 4, 3, 0, 0), utc(2026, 4, 5, 4, 0, 0), 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustParse(t, tt.extra, tt.at)
			r := q.Range
			if !r.From.Equal(tt.from) || !r.To.Equal(tt.to) {
				t.Errorf("range [%v, %v), want [%v, %v)", r.From, r.To, tt.from, tt.to)
			}
			if tt.hours != 0 && r.To.Sub(r.From).Hours() != tt.hours {
				t.Errorf("range of %v hours, want %v", r.To.Sub(r.From).Hours(), tt.hours)
			}
			if r.AllTime || r.Loc != q.Location {
				t.Errorf("AllTime %v, Loc %v (query's %v)", r.AllTime, r.Loc, q.Location)
			}
		})
	}
}

func TestAllTime(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	q := mustParse(t, `{"date_range":"all","timezone":"Europe/Berlin","dimensions":["time"]}`, now)
	if !q.Range.AllTime || !q.Range.From.IsZero() || !q.Range.To.Equal(time.Date(2026, 12, 8, 0, 0, 0, 0, berlin)) {
		t.Fatalf("all: %+v", q.Range)
	}
	if got := q.Resolved().DateRange; got != "all" {
		t.Errorf("resolved date_range %v before the start is set", got)
	}
	q2, err := q.WithStart(time.Date(2025, 3, 4, 22, 30, 0, 0, time.UTC)) // 23:30 in Berlin
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 3, 4, 0, 0, 0, 0, berlin); !q2.Range.From.Equal(want) {
		t.Errorf("From %v, want %v", q2.Range.From, want)
	}
	if g, _ := q2.TimeGrain(); g != Month {
		t.Errorf("grain %v over 21 months, want month", g)
	}
	if _, err := q.WithStart(now.AddDate(0, 0, 2)); err == nil {
		t.Error("a start after the end accepted")
	}
	// The range length is checked once the start is known.
	qm := mustParse(t, `{"date_range":"all","dimensions":["time:minute"]}`, now)
	if _, err := qm.WithStart(now.AddDate(0, 0, -3)); err == nil || err.(*Error).Part != "dimensions[0]" {
		t.Errorf("time:minute over 3 days: %v", err)
	}
	// Other ranges are left alone.
	qd := mustParse(t, `{"date_range":"7d"}`, now)
	if qd2, err := qd.WithStart(time.Time{}); err != nil || !qd2.Range.From.Equal(qd.Range.From) {
		t.Errorf("WithStart changed a 7d range: %v %v", qd2.Range, err)
	}
}
