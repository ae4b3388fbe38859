package stats

import (
	"slices"
	"testing"
	"time"
)

func TestGrainStartAndLabel(t *testing.T) {
	berlin, kolkata := mustLoc(t, "Europe/Berlin"), mustLoc(t, "Asia/Kolkata")
	santiago := mustLoc(t, "America/Santiago")
	at := time.Date(2026, 12, 6, 23, 30, 15, 0, time.UTC) // Sunday in UTC, Monday 00:30 in Berlin
	tests := []struct {
		name  string
		t     time.Time
		loc   *time.Location
		g     Grain
		start time.Time
		label string
	}{
		{"minute", at, time.UTC, Minute, time.Date(2026, 12, 6, 23, 30, 0, 0, time.UTC), "2026-12-06 23:30:00"},
		{"hour", at, time.UTC, Hour, time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC), "2026-12-06 23:00:00"},
		{"day", at, time.UTC, Day, time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), "2026-12-06"},
		{"week of a Sunday starts on the Monday before", at, time.UTC, Week, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), "2026-11-30"},
		{"month", at, time.UTC, Month, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "2026-12-01"},
		{"day in Berlin", at, berlin, Day, time.Date(2026, 12, 7, 0, 0, 0, 0, berlin), "2026-12-07"},
		{"week in Berlin is Monday's", at, berlin, Week, time.Date(2026, 12, 7, 0, 0, 0, 0, berlin), "2026-12-07"},
		{"hour in a half-hour zone", at, kolkata, Hour, time.Date(2026, 12, 6, 23, 30, 0, 0, time.UTC), "2026-12-07 05:00:00"},
		{"month in Berlin starts in the previous UTC day", time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC), berlin, Month,
			time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC), "2026-12-01"},
		// 01:30 UTC on 2026-10-25 is the second 02:30 in Berlin: its hour
		// label began with the first 02:00, at 00:00 UTC.
		{"repeated hour starts at its first occurrence", time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), berlin, Hour,
			time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC), "2026-10-25 02:00:00"},
		{"hour after the spring gap", time.Date(2026, 3, 29, 1, 10, 0, 0, time.UTC), berlin, Hour,
			time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), "2026-03-29 03:00:00"},
		{"day without midnight starts at 01:00", time.Date(2026, 9, 6, 18, 0, 0, 0, time.UTC), santiago, Day,
			time.Date(2026, 9, 6, 4, 0, 0, 0, time.UTC), "2026-09-06"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.g.Start(tt.t, tt.loc); !got.Equal(tt.start) {
				t.Errorf("Start %v, want %v", got.UTC(), tt.start.UTC())
			}
			if got := tt.g.Label(tt.t, tt.loc); got != tt.label {
				t.Errorf("Label %q, want %q", got, tt.label)
			}
		})
	}
}

func TestLabels(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	hours := func(day string, skip, n int) []string {
		var out []string
		for h := 0; h < n; h++ {
			if h != skip {
				out = append(out, day+" "+time.Date(2000, 1, 1, h, 0, 0, 0, time.UTC).Format("15:04:05"))
			}
		}
		return out
	}
	tests := []struct {
		name, extra string
		at          time.Time
		g           Grain
		want        []string
	}{
		{"7d by day", `{"date_range":"7d"}`, now, Day,
			[]string{"2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04", "2026-12-05", "2026-12-06", "2026-12-07"}},
		{"month by week clamps the first week", `{"date_range":"month"}`, now, Week,
			[]string{"2026-12-01", "2026-12-07", "2026-12-14", "2026-12-21", "2026-12-28"}},
		{"6mo by month", `{"date_range":"6mo"}`, now, Month,
			[]string{"2026-07-01", "2026-08-01", "2026-09-01", "2026-10-01", "2026-11-01", "2026-12-01"}},
		{"dates by month are not clamped", `{"date_range":["2026-11-15","2026-12-02"]}`, now, Month,
			[]string{"2026-11-01", "2026-12-01"}},
		{"day by hour", `{"date_range":"day"}`, now, Hour, hours("2026-12-07", -1, 24)},
		{"Berlin spring day has 23 hours", `{"date_range":"day","timezone":"Europe/Berlin"}`, time.Date(2026, 3, 29, 12, 0, 0, 0, time.UTC), Hour,
			hours("2026-03-29", 2, 24)},
		{"Berlin autumn day lists 02:00 once", `{"date_range":"day","timezone":"Europe/Berlin"}`, time.Date(2026, 10, 25, 12, 0, 0, 0, time.UTC), Hour,
			hours("2026-10-25", -1, 24)},
		{"Berlin week across spring by day", `{"date_range":["2026-03-28","2026-03-30"],"timezone":"Europe/Berlin"}`, now, Day,
			[]string{"2026-03-28", "2026-03-29", "2026-03-30"}},
		{"instants by hour start mid-hour", `{"date_range":["2026-12-07T10:30:00+01:00","2026-12-07T12:00:00+01:00"],"timezone":"Europe/Berlin"}`, now, Hour,
			[]string{"2026-12-07 10:00:00", "2026-12-07 11:00:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustParse(t, tt.extra, tt.at)
			got, err := q.Range.Labels(tt.g)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("labels\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	// Half an hour across the end of summer time in Berlin: 02:45 to
	// 02:59 summer time, then 02:00 to 02:14 winter time.
	r := Range{From: time.Date(2026, 10, 25, 0, 45, 0, 0, time.UTC), To: time.Date(2026, 10, 25, 1, 15, 0, 0, time.UTC), Loc: berlin}
	got, err := r.Labels(Minute)
	if err != nil || len(got) != 30 || got[0] != "2026-10-25 02:00:00" || got[14] != "2026-10-25 02:14:00" || got[15] != "2026-10-25 02:45:00" {
		t.Errorf("minutes across the repeated hour: %v %d labels %q", err, len(got), got)
	}
	r = Range{From: time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), To: time.Date(2026, 10, 25, 2, 30, 0, 0, time.UTC), Loc: berlin}
	if got, _ := r.Labels(Hour); !slices.Equal(got, []string{"2026-10-25 02:00:00", "2026-10-25 03:00:00"}) {
		t.Errorf("hours across the repeated hour: %q", got)
	}
	// realtime: the minutes from 14:00 to 14:30, both partly inside.
	q := mustParse(t, `{"date_range":"realtime"}`, now)
	if got, _ := q.Range.Labels(Minute); len(got) != 31 || got[0] != "2026-12-07 14:00:00" || got[30] != "2026-12-07 14:30:00" {
		t.Errorf("realtime minutes: %d labels %q", len(got), got)
	}
	// Every label is the label of its own bucket start, in order.
	q = mustParse(t, `{"date_range":"year","timezone":"Europe/Berlin"}`, now)
	for _, g := range []Grain{Hour, Day, Week, Month} {
		got, err := q.Range.Labels(g)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Errorf("%v labels not strictly increasing", g)
		}
	}
	if got, _ := q.Range.Labels(Hour); len(got) != 365*24-1 {
		t.Errorf("year by hour: %d labels, want %d (one hour skipped in spring, one repeated in autumn)", len(got), 365*24-1)
	}
	if got, _ := q.Range.Labels(Week); len(got) != 53 || got[0] != "2026-01-01" || got[1] != "2026-01-05" {
		t.Errorf("year by week: %d labels from %q", len(got), got[:2])
	}
}

func TestRangeLabelClampsWeeks(t *testing.T) {
	q := mustParse(t, `{"date_range":"month"}`, now)
	for _, tt := range []struct {
		t     time.Time
		label string
		start time.Time
	}{
		{time.Date(2026, 12, 3, 5, 0, 0, 0, time.UTC), "2026-12-01", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 12, 8, 5, 0, 0, 0, time.UTC), "2026-12-07", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)},
	} {
		if got := q.Range.Label(tt.t, Week); got != tt.label {
			t.Errorf("Label(%v) = %q, want %q", tt.t, got, tt.label)
		}
		if got := q.Range.BucketStart(tt.t, Week); !got.Equal(tt.start) {
			t.Errorf("BucketStart(%v) = %v, want %v", tt.t, got, tt.start)
		}
	}
}

func TestAutoGrain(t *testing.T) {
	tests := []struct {
		dateRange string
		want      Grain
	}{
		{`"realtime"`, Hour}, {`"day"`, Hour}, {`"24h"`, Hour},
		{`["2026-12-05","2026-12-06"]`, Hour},                     // 48 hours
		{`["2026-12-05T00:00:00Z","2026-12-07T01:00:00Z"]`, Hour}, // 49 hours: 48 whole hours to its last second
		{`["2026-12-05T00:00:00Z","2026-12-07T01:00:01Z"]`, Day},  // 49 whole hours
		{`"7d"`, Day}, {`"30d"`, Day}, {`"month"`, Day},
		{`["2026-10-28","2026-12-07"]`, Day},  // 41 days
		{`["2026-10-27","2026-12-07"]`, Week}, // 42 days
		{`"91d"`, Week}, {`"6mo"`, Week}, {`"12mo"`, Week}, {`"year"`, Week},
		{`["2025-01-01","2026-01-06"]`, Week},  // 53 weeks: 52 whole weeks to its last second
		{`["2025-01-01","2026-01-07"]`, Month}, // 53 weeks and a day
	}
	for _, tt := range tests {
		q := mustParse(t, `{"date_range":`+tt.dateRange+`,"dimensions":["time"]}`, now)
		if got, ok := q.TimeGrain(); !ok || got != tt.want {
			t.Errorf("%s: grain %v, want %v", tt.dateRange, got, tt.want)
		}
	}
}

func TestLabelsBound(t *testing.T) {
	r := Range{From: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), Loc: time.UTC}
	if _, err := r.Labels(Hour); err != ErrTooManyBuckets {
		t.Errorf("20 years of hours: %v", err)
	}
	if got, err := r.Labels(Month); err != nil || len(got) != 240 {
		t.Errorf("20 years of months: %d, %v", len(got), err)
	}
}

// TestLabelsCoverEveryInstant checks Label, BucketStart and Labels against
// each other on instants spread over ranges with clock changes, in zones
// that shift by an hour, by half an hour, or at midnight.
func TestLabelsCoverEveryInstant(t *testing.T) {
	for _, tt := range []struct {
		zone     string
		from, to string
		grains   []Grain
		step     time.Duration
	}{
		{"Europe/Berlin", "2026-01-01", "2027-01-01", []Grain{Hour, Day, Week, Month}, 17 * time.Minute},
		{"Europe/Berlin", "2026-10-24", "2026-10-26", []Grain{Minute, Hour}, 7 * time.Minute},
		{"Australia/Lord_Howe", "2026-01-01", "2027-01-01", []Grain{Hour, Day, Week, Month}, 17 * time.Minute},
		{"Australia/Lord_Howe", "2026-04-04", "2026-04-06", []Grain{Minute, Hour}, 7 * time.Minute},
		{"America/Santiago", "2026-04-01", "2026-09-30", []Grain{Hour, Day, Week, Month}, 13 * time.Minute},
		{"Asia/Kolkata", "2026-12-03", "2026-12-09", []Grain{Minute, Hour, Day, Week}, 11 * time.Minute},
	} {
		q := mustParse(t, `{"date_range":["`+tt.from+`","`+tt.to+`"],"timezone":"`+tt.zone+`"}`, now)
		r := q.Range
		for _, g := range tt.grains {
			labels, err := r.Labels(g)
			if err != nil {
				t.Fatal(err)
			}
			used := make(map[string]bool)
			for at := r.From; at.Before(r.To); at = at.Add(tt.step) {
				l := r.Label(at, g)
				if _, ok := slices.BinarySearch(labels, l); !ok {
					t.Fatalf("%s %v: label %q of %v not among the labels", tt.zone, g, l, at)
				}
				used[l] = true
				s := r.BucketStart(at, g)
				if s.After(at) || s.Before(r.From) || r.Label(s, g) != l {
					t.Fatalf("%s %v: bucket start %v of %v (label %q, its own %q)", tt.zone, g, s, at, l, r.Label(s, g))
				}
			}
			if g != Minute && len(used) != len(labels) {
				t.Errorf("%s %v: %d labels, %d used by instants %v apart", tt.zone, g, len(labels), len(used), tt.step)
			}
		}
	}
}
