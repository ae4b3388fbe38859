package stats

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Range is the resolved date_range: the half-open [From, To) in absolute
// time and the location its days, weeks, months and buckets are counted in.
type Range struct {
	From, To time.Time
	Loc      *time.Location
	// AllTime is "all": From is zero until the executor, which knows
	// where the site's data begins, sets it with Query.WithStart.
	AllTime bool
}

// Ranges are kept within the years event timestamps may have (in UTC).
const (
	minYear = 1970
	maxYear = 2999
)

// checkYears refuses a range reaching outside minYear..maxYear, in UTC so
// that the check is the same whatever zone the range is written in.
func (r Range) checkYears() *Error {
	for _, t := range []time.Time{r.From, r.To} {
		if t.IsZero() && r.AllTime {
			continue
		}
		if y := t.UTC().Year(); y < minYear || y > maxYear {
			return errf("date_range", "must lie within the years "+strconv.Itoa(minYear)+" to "+strconv.Itoa(maxYear)+" (UTC)")
		}
	}
	return nil
}

// parseDateRange resolves date_range at now in loc. Shorthands counted in
// days or months start and end at local midnights; the ones counted in
// minutes or hours end at now.
func parseDateRange(raw json.RawMessage, now time.Time, loc *time.Location) (Range, *Error) {
	const part = "date_range"
	if len(raw) > 0 && raw[0] == '[' {
		return parseExplicitRange(raw, loc)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return Range{}, errf(part, "must be a string such as \"7d\" or a list of two dates or two RFC 3339 times")
	}
	r := Range{Loc: loc}
	today := Day.truncWall(wallOf(now, loc))
	days := func(first, last time.Time) { // whole local days, both included
		r.From, r.To = instant(first, loc), instant(last.AddDate(0, 0, 1), loc)
	}
	switch s {
	case "realtime", "30m": // realtime is 30 minutes in our contract (Plausible's dashboard: 5)
		r.From, r.To = now.Add(-30*time.Minute), now
	case "5m": // current visitors
		r.From, r.To = now.Add(-5*time.Minute), now
	case "24h":
		r.From, r.To = now.Add(-24*time.Hour), now
	case "day":
		days(today, today)
	case "7d", "28d", "91d":
		n, _ := strconv.Atoi(strings.TrimSuffix(s, "d"))
		days(today.AddDate(0, 0, -(n-1)), today)
	case "30d":
		// Plausible's quirk, kept so answers match: 30d is today-30 ..
		// today, 31 days, while 7d, 28d and 91d hold n days.
		days(today.AddDate(0, 0, -30), today)
	case "month":
		days(Month.truncWall(today), Month.truncWall(today).AddDate(0, 1, -1))
	case "6mo", "12mo":
		n, _ := strconv.Atoi(strings.TrimSuffix(s, "mo"))
		days(Month.truncWall(today).AddDate(0, -(n-1), 0), Month.truncWall(today).AddDate(0, 1, -1))
	case "year":
		y := today.Year()
		days(time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(y, 12, 31, 0, 0, 0, 0, time.UTC))
	case "all":
		r.AllTime, r.To = true, instant(today.AddDate(0, 0, 1), loc)
	default:
		return Range{}, errf(part, "unknown range "+strconv.Quote(s)+
			"; one of realtime, 5m, 30m, 24h, day, 7d, 28d, 30d, 91d, month, 6mo, 12mo, year, all,"+
			" or a list of two dates or two RFC 3339 times")
	}
	return r, nil
}

// parseExplicitRange reads ["2026-12-01","2026-12-07"] (whole local days,
// both included) or two RFC 3339 times (From and To as given, To
// excluded).
func parseExplicitRange(raw json.RawMessage, loc *time.Location) (Range, *Error) {
	const part = "date_range"
	var pair []string
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return Range{}, errf(part, "a list must hold two strings: two dates or two RFC 3339 times")
	}
	var d [2]time.Time
	var isDate [2]bool
	for i, s := range pair {
		p := part + "[" + strconv.Itoa(i) + "]"
		t, err := time.Parse(time.DateOnly, s)
		isDate[i] = err == nil
		if err != nil {
			if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return Range{}, errf(p, strconv.Quote(s)+" is neither a date (2026-12-07) nor an RFC 3339 time (2026-12-07T10:00:00+01:00)")
			}
		}
		d[i] = t
	}
	r := Range{Loc: loc}
	switch {
	case isDate[0] != isDate[1]:
		return Range{}, errf(part, "mixes a date and a time; give two dates or two RFC 3339 times")
	case isDate[0] && d[1].Before(d[0]):
		return Range{}, errf(part, "the last date is before the first")
	case isDate[0]:
		r.From, r.To = instant(d[0], loc), instant(d[1].AddDate(0, 0, 1), loc)
	case !d[0].Before(d[1]):
		return Range{}, errf(part, "the end must be after the start")
	default:
		r.From, r.To = d[0], d[1]
	}
	return r, nil
}
