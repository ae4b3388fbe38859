package systemtest

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is the Stats API's ground truth, shared by the REST test
// (statsapi_test.go) and live queries over the WebSocket: the events the
// tests send (genStatsEvent), random queries of the contract
// (genStatsQueries) and the answer a query must have (statsTruth),
// computed from the events as sent. It is written from the contract
// (../shared/DESIGN.md, docs/queries.md), not from package stats: it
// derives pages, hosts, referrers and devices itself and never calls the
// server's code.

// statsEvent is one event as sent to /v1/collect. The User-Agent is the
// request's, so a request holds events of one UA.
type statsEvent struct {
	ID, Site, Goal, URL, Ref, UID string
	TS                            int64
	UA                            int // index in statsUAs
	Props                         map[string]any
	// TooLate is an event whose ts is older than the server's allowed
	// lateness when sent: accepted, and counted nowhere. Not sent.
	TooLate bool
	// Day is the UTC day the server received the event (YYYY-MM-DD), set
	// when it is acknowledged: without a uid, its visitor is that of its
	// site, address (the test's, always loopback) and User-Agent that day
	// (package visitorid).
	Day string
}

// statsUA is a User-Agent whose device class the server derives is known.
type statsUA struct {
	UA, Device string
	Bot        bool
}

var statsUAs = []statsUA{
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "desktop", false},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "desktop", false},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "mobile", false},
	{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "mobile", false},
	{"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "tablet", false},
	{"curl/8.5.0", "server", false},
	{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", true},
}

// The values events are drawn from. Hosts differ in case and port, which
// the server's event:hostname drops; paths keep their case.
var (
	statsHosts = []string{"https://shop.example", "https://Docs.Shop.Example:8443", "http://blog.example", "https://www.shop.example"}
	statsPaths = []string{"", "/", "/pricing", "/docs", "/docs/api", "/blog/a", "/blog/B", "/about", "/signup", "/Checkout"}
	statsGoals = []string{"pageview", "pageview", "pageview", "pageview", "pageview", "signup", "purchase", "outbound.click"}
	statsPlans = []string{"free", "starter", "pro", "business", "enterprise"}
	statsRefs  = []string{"", "", "", "https://news.example/item?id=1", "https://www.Google.com/search?q=x",
		"https://social.example:8080/p/2", "android-app://com.slack/", "https://search.example"}
)

// genStatsEvent draws one event of site at ts, sent with the UA ua.
func genStatsEvent(r *rand.Rand, seq int, site string, ts int64, ua int) statsEvent {
	e := statsEvent{
		ID:   fmt.Sprintf("st-%06d-%08x", seq, r.Uint32()),
		Site: site, Goal: statsGoals[r.IntN(len(statsGoals))],
		URL: statsHosts[r.IntN(len(statsHosts))] + statsPaths[r.IntN(len(statsPaths))],
		Ref: statsRefs[r.IntN(len(statsRefs))], TS: ts, UA: ua,
	}
	switch r.IntN(30) {
	case 0, 1, 2, 3, 4, 5, 6:
		e.URL += "?utm_source=x"
	case 7, 8, 9, 10, 11:
		e.URL += "#section"
	case 12:
		e.URL = "" // a server-side event: no page, no hostname
	case 13:
		e.URL = "/login?next=https://other.example/x" // relative: a page, no hostname
	case 14:
		e.URL = strings.TrimPrefix(e.URL, "https:") // scheme-relative ("http:" stays)
	}
	if r.IntN(7) > 0 { // some events have no visitor id
		e.UID = "v" + strconv.Itoa(r.IntN(400))
	}
	if r.IntN(60) == 0 {
		e.Goal = "engagement" // counted in no metric of the contract
	}
	props := map[string]any{}
	if r.IntN(5) > 0 {
		props["plan"] = statsPlans[r.IntN(len(statsPlans))]
	}
	switch p := r.IntN(20); {
	case e.Goal == "purchase" && p < 16, p < 3:
		props["price"] = float64(1+r.IntN(99_999)) / 100 // cents, exact in a float64 round trip
		if r.IntN(15) == 0 {
			props["price"] = -props["price"].(float64) // a refund
		}
	case p == 19:
		props["price"] = "9.99" // a string: not a number, in no sum
	}
	if r.IntN(10) == 0 {
		props["beta"] = r.IntN(2) == 0
	}
	if len(props) > 0 {
		e.Props = props
	}
	return e
}

func (e statsEvent) json() []byte {
	m := map[string]any{"id": e.ID, "site": e.Site, "type": e.Goal, "ts": e.TS}
	if e.URL != "" {
		m["url"] = e.URL
	}
	if e.Ref != "" {
		m["ref"] = e.Ref
	}
	if e.UID != "" {
		m["uid"] = e.UID
	}
	if e.Props != nil {
		m["props"] = e.Props
	}
	b, _ := json.Marshal(m)
	return b
}

// statsFilter is one filter of a query: a leaf (Dim set) or and, or, not.
type statsFilter struct {
	Op       string
	Dim      string
	Clauses  []string
	NoCase   bool // {"case_sensitive": false}
	Children []statsFilter
}

func (f statsFilter) MarshalJSON() ([]byte, error) {
	switch f.Op {
	case "and", "or":
		return json.Marshal([]any{f.Op, f.Children})
	case "not":
		return json.Marshal([]any{"not", f.Children[0]})
	}
	out := []any{f.Op, f.Dim, f.Clauses}
	if f.NoCase {
		out = append(out, map[string]bool{"case_sensitive": false})
	}
	return json.Marshal(out)
}

// statsQuery is one Stats API query; body is its JSON.
type statsQuery struct {
	Site       string
	Metrics    []string
	Range      any // a shorthand string or two strings
	Dims       []string
	Filters    []statsFilter
	OrderBy    [][2]string
	Limit      int // 0: not sent
	Offset     int
	TotalRows  bool
	TimeLabels bool
	TZ         string // "": not sent (UTC)
	// DST says the range crosses a change of the zone's offset; not sent.
	DST bool
}

func (q statsQuery) body() []byte {
	m := map[string]any{"site_id": q.Site, "metrics": q.Metrics, "date_range": q.Range}
	if q.Dims != nil {
		m["dimensions"] = q.Dims
	}
	if q.Filters != nil {
		m["filters"] = q.Filters
	}
	if q.OrderBy != nil {
		m["order_by"] = q.OrderBy
	}
	if q.Limit > 0 || q.Offset > 0 {
		p := map[string]int{"offset": q.Offset}
		if q.Limit > 0 {
			p["limit"] = q.Limit
		}
		m["pagination"] = p
	}
	if q.TotalRows || q.TimeLabels {
		m["include"] = map[string]bool{"total_rows": q.TotalRows, "time_labels": q.TimeLabels}
	}
	if q.TZ != "" {
		m["timezone"] = q.TZ
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// relative reports whether the query's range depends on when it is asked.
func (q statsQuery) relative() bool { _, ok := q.Range.(string); return ok }

// statsAnswer is the part of a Stats API answer the truth gives.
type statsAnswer struct {
	Results []statsRow `json:"results"`
	Meta    struct {
		TotalRows   *int     `json:"total_rows,omitempty"`
		TimeLabels  []string `json:"time_labels,omitempty"`
		Approximate []string `json:"approximate"`
	} `json:"meta"`
}

// statsRow is one result row; metrics are float64, or nil for an
// average of nothing.
type statsRow struct {
	Dimensions []string `json:"dimensions"`
	Metrics    []any    `json:"metrics"`
}

// dstChange is a change of a zone's UTC offset that queries cross.
type dstChange struct {
	Zone string
	At   time.Time
}

// lastDSTChange is the last change of zone's offset before now.
func lastDSTChange(zone string, now time.Time) dstChange {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		panic(err)
	}
	var last time.Time
	for t := now.AddDate(-1, 0, 0); ; {
		_, end := t.In(loc).ZoneBounds()
		if end.IsZero() || end.After(now) {
			break
		}
		last, t = end, end
	}
	return dstChange{Zone: zone, At: last}
}

// statsGenConfig is what genStatsQueries draws queries for.
type statsGenConfig struct {
	Site  string
	Now   time.Time   // relative ranges and dates are drawn around it
	Zones []string    // time zones of the queries
	DST   []dstChange // every sixth query crosses one of these, when given
}

// genStatsQueries draws n valid queries: 1-3 metrics, 0-2 dimensions, 0-3
// filters with or and not, ranges of every form near cfg.Now, time zones,
// order_by, pagination and include on some.
func genStatsQueries(r *rand.Rand, n int, cfg statsGenConfig) []statsQuery {
	out := make([]statsQuery, 0, n)
	for i := range n {
		q := statsQuery{Site: cfg.Site}
		q.Dims = genDims(r)
		if len(cfg.DST) > 0 && i%6 == 5 {
			genDSTRange(r, &q, cfg.DST[r.IntN(len(cfg.DST))]) // may add a time dimension
		} else {
			q.TZ = cfg.Zones[r.IntN(len(cfg.Zones))]
			q.Range = genRange(r, cfg.Now, q.TZ)
			if q.TZ == "UTC" && r.IntN(2) == 0 {
				q.TZ = "" // the default
			}
		}
		q.Metrics = genMetrics(r, q.Dims)
		q.Filters = genFilters(r)
		genExtras(r, &q)
		out = append(out, q)
	}
	return out
}

var (
	statsTimeDims  = []string{"time:hour", "time:day", "time"}
	statsOtherDims = []string{"event:page", "event:hostname", "event:goal", "event:props:plan", "visit:referrer", "visit:device"}
)

func genDims(r *rand.Rand) []string {
	var dims []string
	for range r.IntN(3) {
		var d string
		if r.IntN(3) == 0 && !slices.ContainsFunc(dims, isTimeDim) {
			d = statsTimeDims[r.IntN(len(statsTimeDims))]
		} else {
			d = statsOtherDims[r.IntN(len(statsOtherDims))]
		}
		if !slices.Contains(dims, d) {
			dims = append(dims, d)
		}
	}
	return dims
}

func isTimeDim(d string) bool { return strings.HasPrefix(d, "time") }

func genMetrics(r *rand.Rand, dims []string) []string {
	pool := []string{"events", "pageviews", "visitors", "sum:props.price", "avg:props.price"}
	if slices.Contains(dims, "event:goal") {
		pool = append(pool, "conversion_rate", "conversion_rate") // drawn more often where allowed
	}
	var ms []string
	for len(ms) < 1+r.IntN(3) {
		m := pool[r.IntN(len(pool))]
		if !slices.Contains(ms, m) {
			ms = append(ms, m)
		}
	}
	return ms
}

// statsLabels are the values each dimension has among the events sent, as
// the server labels them: filters are drawn from them so that they match.
var statsLabels = map[string][]string{
	"event:page":       {"/", "/pricing", "/docs", "/docs/api", "/blog/a", "/blog/B", "/about", "/signup", "/Checkout"},
	"event:hostname":   {"shop.example", "docs.shop.example", "blog.example", "www.shop.example"},
	"event:goal":       {"pageview", "signup", "purchase", "outbound.click"},
	"event:props:plan": {"free", "starter", "pro", "business", "enterprise", "(none)"},
	"visit:referrer":   {"Direct / None", "news.example", "www.google.com", "social.example", "com.slack", "search.example"},
	"visit:device":     {"desktop", "mobile", "tablet", "server"},
}

var statsRegexps = map[string][]string{
	"event:page":       {"^/docs", "^/blog/[ab]$", "ing$", "^/$", "o"},
	"event:hostname":   {`^shop\.`, `\.shop\.example$`, "blog", "^www"},
	"event:goal":       {"^p", "click$", "^(signup|purchase)$"},
	"event:props:plan": {"^(pro|business)$", "er", `^\(none\)$`, "^f"},
	"visit:referrer":   {"^Direct / None$", `\.example$`, "google", "^s", "None"},
	"visit:device":     {"^(mobile|tablet)$", "top$", "e"},
}

// genFilters draws 0-3 top-level filters, fewer more often. event:goal and event:hostname
// are filtered at the top level only (Plausible's rule).
func genFilters(r *rand.Rand) []statsFilter {
	var fs []statsFilter
	for range []int{0, 0, 1, 1, 1, 2, 2, 3}[r.IntN(8)] {
		switch k := r.IntN(10); {
		case k < 5:
			fs = append(fs, genLeaf(r, statsOtherDims))
		case k < 7:
			fs = append(fs, statsFilter{Op: "or", Children: genLeaves(r, 2+r.IntN(2))})
		case k < 9:
			child := genLeaf(r, nestedDims)
			if r.IntN(3) == 0 {
				child = statsFilter{Op: "or", Children: genLeaves(r, 2)}
			}
			fs = append(fs, statsFilter{Op: "not", Children: []statsFilter{child}})
		default:
			and := statsFilter{Op: "and", Children: genLeaves(r, 2)}
			fs = append(fs, statsFilter{Op: "or", Children: []statsFilter{and, genLeaf(r, nestedDims)}})
		}
	}
	return fs
}

var nestedDims = []string{"event:page", "event:props:plan", "visit:referrer", "visit:device"}

func genLeaves(r *rand.Rand, n int) []statsFilter {
	out := make([]statsFilter, n)
	for i := range out {
		out[i] = genLeaf(r, nestedDims)
	}
	return out
}

func genLeaf(r *rand.Rand, dims []string) statsFilter {
	f := statsFilter{Dim: dims[r.IntN(len(dims))]}
	f.Op = []string{"is", "is_not", "contains", "contains_not", "matches", "matches_not"}[r.IntN(6)]
	labels := statsLabels[f.Dim]
	for range 1 + r.IntN(2) {
		var c string
		switch f.Op {
		case "is", "is_not":
			c = labels[r.IntN(len(labels))]
		case "contains", "contains_not":
			c = labels[r.IntN(len(labels))]
			if len(c) > 1 {
				i := r.IntN(len(c) - 1)
				c = c[i : i+1+r.IntN(min(3, len(c)-i))]
			}
		default:
			res := statsRegexps[f.Dim]
			c = res[r.IntN(len(res))]
		}
		if r.IntN(4) == 0 {
			c = strings.ToUpper(c)
			f.NoCase = r.IntN(3) > 0 // else an exact comparison that fails
		}
		f.Clauses = append(f.Clauses, c)
	}
	return f
}

// genRange draws a date range near now in zone.
func genRange(r *rand.Rand, now time.Time, zone string) any {
	loc := mustZone(zone)
	day := func(back int) string { return now.In(loc).AddDate(0, 0, -back).Format(time.DateOnly) }
	switch r.IntN(10) {
	case 0:
		return []string{"day", "realtime"}[r.IntN(2)]
	case 1:
		return "7d"
	case 2:
		return "24h"
	case 3:
		return []string{"28d", "30d", "month"}[r.IntN(3)]
	case 4, 5:
		last := r.IntN(3)
		return [2]string{day(last + r.IntN(2)), day(last)}
	default:
		// Instants within the last two days, written in the zone's offset
		// or in UTC, on whole minutes or not.
		from := now.Add(-time.Duration(r.Int64N(int64(48 * time.Hour))))
		if r.IntN(2) == 0 {
			from = from.Truncate(time.Minute)
		} else {
			from = from.Truncate(time.Second)
		}
		to := from.Add(time.Duration(30+r.IntN(30*60)) * time.Minute)
		if r.IntN(2) == 0 {
			from, to = from.In(loc), to.In(loc)
		} else {
			from, to = from.UTC(), to.UTC()
		}
		return [2]string{from.Format(time.RFC3339), to.Format(time.RFC3339)}
	}
}

// genDSTRange makes q a query across the change c, in c's zone, mostly
// by hour.
func genDSTRange(r *rand.Rand, q *statsQuery, c dstChange) {
	loc := mustZone(c.Zone)
	q.TZ, q.DST = c.Zone, true
	local := c.At.In(loc)
	switch r.IntN(3) {
	case 0:
		q.Range = [2]string{local.Format(time.DateOnly), local.Format(time.DateOnly)}
	case 1:
		q.Range = [2]string{local.AddDate(0, 0, -1).Format(time.DateOnly), local.AddDate(0, 0, 1).Format(time.DateOnly)}
	default:
		from := c.At.Add(-time.Duration(1+r.IntN(5)) * time.Hour)
		to := c.At.Add(time.Duration(1+r.IntN(5)) * time.Hour)
		q.Range = [2]string{from.In(loc).Format(time.RFC3339), to.In(loc).Format(time.RFC3339)}
	}
	if !slices.ContainsFunc(q.Dims, isTimeDim) && r.IntN(4) > 0 {
		tdim := "time:hour"
		if r.IntN(4) == 0 {
			tdim = "time:day"
		}
		q.Dims = append([]string{tdim}, q.Dims[:min(1, len(q.Dims))]...)
	}
}

// genExtras draws order_by, pagination and include.
func genExtras(r *rand.Rand, q *statsQuery) {
	if r.IntN(10) < 3 {
		names := append(slices.Clone(q.Metrics), q.Dims...)
		r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		for _, name := range names[:1+r.IntN(min(2, len(names)))] {
			q.OrderBy = append(q.OrderBy, [2]string{name, []string{"asc", "desc"}[r.IntN(2)]})
		}
	}
	if len(q.Dims) > 0 && r.IntN(3) == 0 { // a query without dimensions has one row
		q.Limit = 1 + r.IntN(8)
		q.Offset = r.IntN(5)
		if r.IntN(4) == 0 {
			q.Limit = 0 // offset alone
		}
	}
	q.TotalRows = r.IntN(10) < 3
	q.TimeLabels = slices.ContainsFunc(q.Dims, isTimeDim) && r.IntN(2) == 0
}

func mustZone(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// statsTruth is the answer q must have over events, the events the server
// accepted, each id once, asked at now. It counts every event but bots',
// engagement events and those too late; visitors are distinct uids (an event without one
// is its site's, address's and User-Agent's of its receive day); sums and averages are over the prop's numbers only.
func statsTruth(events []statsEvent, q statsQuery, now time.Time) statsAnswer {
	loc := mustZone(q.TZ)
	from, to := resolveRange(q.Range, now, loc)
	// Ranges compare in whole ms, as event times are.
	lo, hi := from.UnixMilli(), to.UnixMilli()
	tr := newTruthTable(q, loc, autoGrain(from, to))
	for _, e := range events {
		if e.Site != q.Site || !statsCounted(e) || e.TS < lo || e.TS >= hi {
			continue
		}
		tr.add(deriveFacts(e))
	}
	rows := tr.rows()
	sortTruthRows(rows, q)
	var a statsAnswer
	a.Meta.Approximate = []string{}
	if q.TotalRows {
		n := len(rows)
		a.Meta.TotalRows = &n
	}
	if q.TimeLabels {
		a.Meta.TimeLabels = timeLabels(tr.timeDim(), from, to, loc)
	}
	limit := q.Limit
	if limit == 0 {
		limit = 10_000
	}
	lo2 := min(q.Offset, len(rows))
	a.Results = rows[lo2:min(lo2+limit, len(rows))]
	return a
}

// statsCounted reports whether the Stats API counts e: not a bot's, not an
// engagement event, not too late.
func statsCounted(e statsEvent) bool {
	return !statsUAs[e.UA].Bot && e.Goal != "engagement" && !e.TooLate
}

// resolveRange is the instants [from, to) of a date range at now in loc:
// dates are whole local days (local midnight exists on every day of the
// zones used), "24h" ends at now.
func resolveRange(rg any, now time.Time, loc *time.Location) (time.Time, time.Time) {
	midnight := func(t time.Time) time.Time {
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	}
	today := midnight(now.In(loc))
	lastDays := func(n int) (time.Time, time.Time) {
		return midnight(today.AddDate(0, 0, -(n - 1))), midnight(today.AddDate(0, 0, 1))
	}
	switch v := rg.(type) {
	case string:
		switch v {
		case "day":
			return lastDays(1)
		case "7d":
			return lastDays(7)
		case "28d":
			return lastDays(28)
		case "30d": // Plausible's: today and the 30 days before
			return lastDays(31)
		case "month":
			first := today.AddDate(0, 0, 1-today.Day())
			return first, midnight(first.AddDate(0, 1, 0))
		case "24h":
			return now.Add(-24 * time.Hour), now
		case "realtime":
			return now.Add(-30 * time.Minute), now
		}
	case [2]string:
		if d0, err := time.ParseInLocation(time.DateOnly, v[0], loc); err == nil {
			d1, _ := time.ParseInLocation(time.DateOnly, v[1], loc)
			return d0, midnight(d1.AddDate(0, 0, 1))
		}
		f, _ := time.Parse(time.RFC3339, v[0])
		t, _ := time.Parse(time.RFC3339, v[1])
		return f, t
	}
	panic(fmt.Sprintf("range %v not handled by the truth", rg))
}

// facts are what the server derives from an event, derived here with
// net/url.
type facts struct {
	ts                                       int64
	goal, page, host, ref, device, plan, uid string
	cents                                    int64 // price in cents
	hasPrice                                 bool
}

func deriveFacts(e statsEvent) facts {
	f := facts{ts: e.TS, goal: e.Goal, uid: e.UID, device: statsUAs[e.UA].Device, plan: "(none)"}
	if f.uid == "" {
		f.uid = "derived|" + e.Site + "|" + statsUAs[e.UA].UA + "|" + e.Day
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		panic(err)
	}
	f.page, f.host = u.EscapedPath(), strings.ToLower(u.Hostname())
	if f.page == "" && e.URL != "" {
		f.page = "/"
	}
	if e.Ref != "" {
		ru, err := url.Parse(e.Ref)
		if err != nil {
			panic(err)
		}
		f.ref = strings.ToLower(ru.Hostname())
	}
	if p, ok := e.Props["plan"].(string); ok {
		f.plan = p
	}
	if p, ok := e.Props["price"].(float64); ok {
		f.cents, f.hasPrice = int64(math.Round(p*100)), true
	}
	return f
}

func (f facts) value(dim string) string {
	switch dim {
	case "event:page":
		return f.page
	case "event:hostname":
		return f.host
	case "event:goal":
		return f.goal
	case "event:props:plan":
		return f.plan
	case "visit:referrer":
		if f.ref == "" {
			return "Direct / None" // Plausible's label of direct traffic
		}
		return f.ref
	case "visit:device":
		return f.device
	}
	panic("no value of " + dim)
}

// label is f's label of dim in loc: time buckets are local wall-clock
// hours and days.
func (f facts) label(dim string, loc *time.Location) string {
	t := time.UnixMilli(f.ts).In(loc)
	switch dim {
	case "time:hour":
		return t.Format("2006-01-02 15") + ":00:00"
	case "time:day":
		return t.Format(time.DateOnly)
	}
	return f.value(dim)
}

func matchFilter(f statsFilter, x facts) bool {
	switch f.Op {
	case "and":
		for _, c := range f.Children {
			if !matchFilter(c, x) {
				return false
			}
		}
		return true
	case "or":
		for _, c := range f.Children {
			if matchFilter(c, x) {
				return true
			}
		}
		return false
	case "not":
		return !matchFilter(f.Children[0], x)
	}
	v, hit := x.value(f.Dim), false
	for _, c := range f.Clauses {
		switch strings.TrimSuffix(f.Op, "_not") {
		case "is":
			hit = hit || v == c || f.NoCase && strings.ToLower(v) == strings.ToLower(c)
		case "contains":
			hit = hit || strings.Contains(v, c) || f.NoCase && strings.Contains(strings.ToLower(v), strings.ToLower(c))
		case "matches":
			expr := c
			if f.NoCase {
				expr = "(?i)" + c
			}
			hit = hit || regexp.MustCompile(expr).MatchString(v)
		}
	}
	return hit != strings.HasSuffix(f.Op, "_not")
}

// truthTable groups the counted events of a query's range.
type truthTable struct {
	q      statsQuery
	loc    *time.Location
	grain  string // what the plain time dimension is over this range
	groups map[string]*truthGroup
	// base holds, by the labels other than event:goal, the visitors of
	// the events that pass the filters other than the goal filters: what
	// conversion_rate divides by.
	base map[string]map[string]bool
}

type truthGroup struct {
	labels            []string
	events, pageviews int
	visitors          map[string]bool
	cents, priced     int64
}

func newTruthTable(q statsQuery, loc *time.Location, grain string) *truthTable {
	return &truthTable{q: q, loc: loc, grain: grain, groups: map[string]*truthGroup{}, base: map[string]map[string]bool{}}
}

// autoGrain is the grain of the plain time dimension over [from, to),
// Plausible's rule: hours up to 48 whole hours, days up to 40 whole days
// (the longest range drawn is a month).
func autoGrain(from, to time.Time) string {
	span := to.Add(-time.Second).Sub(from)
	switch {
	case span < 49*time.Hour:
		return "time:hour"
	case span < 41*24*time.Hour:
		return "time:day"
	}
	panic(fmt.Sprintf("no truth for the plain time dimension over %v", span))
}

// timeDim is the query's time dimension with the plain one resolved.
func (t *truthTable) timeDim() string {
	d := t.q.Dims[slices.IndexFunc(t.q.Dims, isTimeDim)]
	if d == "time" {
		return t.grain
	}
	return d
}

func (t *truthTable) add(x facts) {
	pass, passBase := true, true
	for _, f := range t.q.Filters {
		ok := matchFilter(f, x)
		pass = pass && ok
		if f.Dim != "event:goal" {
			passBase = passBase && ok
		}
	}
	var labels, baseKey []string
	for _, d := range t.q.Dims {
		if d == "time" {
			d = t.grain
		}
		l := x.label(d, t.loc)
		labels = append(labels, l)
		if d != "event:goal" {
			baseKey = append(baseKey, l)
		}
	}
	if passBase && x.uid != "" {
		k := strings.Join(baseKey, "\x00")
		if t.base[k] == nil {
			t.base[k] = map[string]bool{}
		}
		t.base[k][x.uid] = true
	}
	if !pass {
		return
	}
	k := strings.Join(labels, "\x00")
	g := t.groups[k]
	if g == nil {
		g = &truthGroup{labels: labels, visitors: map[string]bool{}}
		t.groups[k] = g
	}
	g.events++
	if x.goal == "pageview" {
		g.pageviews++
	}
	if x.uid != "" {
		g.visitors[x.uid] = true
	}
	if x.hasPrice {
		g.cents += x.cents
		g.priced++
	}
}

func (t *truthTable) rows() []statsRow {
	rows := make([]statsRow, 0, len(t.groups))
	for _, g := range t.groups {
		row := statsRow{Dimensions: g.labels}
		if row.Dimensions == nil {
			row.Dimensions = []string{}
		}
		for _, m := range t.q.Metrics {
			row.Metrics = append(row.Metrics, t.metric(g, m))
		}
		rows = append(rows, row)
	}
	return rows
}

// round2 rounds to two decimals, as the contract's rates and averages.
func round2(v float64) float64 { return math.Round(v*100) / 100 }

func (t *truthTable) metric(g *truthGroup, m string) any {
	switch m {
	case "events":
		return float64(g.events)
	case "pageviews":
		return float64(g.pageviews)
	case "visitors":
		return float64(len(g.visitors))
	case "sum:props.price":
		return float64(g.cents) / 100
	case "avg:props.price":
		if g.priced == 0 {
			return nil
		}
		return round2(float64(g.cents) / 100 / float64(g.priced))
	case "conversion_rate":
		var key []string
		for i, d := range t.q.Dims {
			if d != "event:goal" {
				key = append(key, g.labels[i])
			}
		}
		of := len(t.base[strings.Join(key, "\x00")])
		if of == 0 {
			return 0.0
		}
		return round2(100 * float64(len(g.visitors)) / float64(of))
	}
	panic("no truth for metric " + m)
}

// sortTruthRows orders rows by order_by, else by the time dimension
// ascending and the first metric descending; then by the labels, so that
// the order is total. A missing value (an average of nothing) sorts
// before every number.
func sortTruthRows(rows []statsRow, q statsQuery) {
	order := q.OrderBy
	if order == nil {
		for _, d := range q.Dims {
			if isTimeDim(d) {
				order = append(order, [2]string{d, "asc"})
			}
		}
		order = append(order, [2]string{q.Metrics[0], "desc"})
	}
	slices.SortFunc(rows, func(a, b statsRow) int {
		for _, o := range order {
			c := 0
			if i := slices.Index(q.Metrics, o[0]); i >= 0 {
				c = compareValues(a.Metrics[i], b.Metrics[i])
			} else {
				i := slices.Index(q.Dims, o[0])
				c = strings.Compare(a.Dimensions[i], b.Dimensions[i])
			}
			if o[1] == "desc" {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return slices.Compare(a.Dimensions, b.Dimensions)
	})
}

func compareValues(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	fa, fb := a.(float64), b.(float64)
	switch {
	case fa < fb:
		return -1
	case fa > fb:
		return 1
	}
	return 0
}

// timeLabels are the labels of every bucket of [from, to): every zone's
// hour and day start on a quarter hour of UTC, so the buckets are those of
// from and of the quarter hours after it.
func timeLabels(dim string, from, to time.Time, loc *time.Location) []string {
	seen := map[string]bool{}
	var out []string
	for t := from; t.Before(to); t = t.Truncate(15 * time.Minute).Add(15 * time.Minute) {
		l := facts{ts: t.UnixMilli()}.label(dim, loc)
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// diffStats describes how got differs from want ("" when it does not):
// labels exactly, numbers within 1e-6, meta.approximate empty.
func diffStats(want, got statsAnswer) string {
	var d []string
	if len(got.Meta.Approximate) != 0 {
		d = append(d, fmt.Sprintf("meta.approximate %v, want []", got.Meta.Approximate))
	}
	if (want.Meta.TotalRows == nil) != (got.Meta.TotalRows == nil) || want.Meta.TotalRows != nil && *want.Meta.TotalRows != *got.Meta.TotalRows {
		d = append(d, fmt.Sprintf("meta.total_rows %s, want %s", intp(got.Meta.TotalRows), intp(want.Meta.TotalRows)))
	}
	if !slices.Equal(want.Meta.TimeLabels, got.Meta.TimeLabels) {
		d = append(d, fmt.Sprintf("meta.time_labels %v, want %v", got.Meta.TimeLabels, want.Meta.TimeLabels))
	}
	if len(want.Results) != len(got.Results) {
		d = append(d, fmt.Sprintf("%d rows, want %d", len(got.Results), len(want.Results)))
	}
	for i := range min(len(want.Results), len(got.Results)) {
		w, g := want.Results[i], got.Results[i]
		if !slices.Equal(w.Dimensions, g.Dimensions) || !sameValues(w.Metrics, g.Metrics) {
			d = append(d, fmt.Sprintf("row %d: %v %v, want %v %v", i, g.Dimensions, g.Metrics, w.Dimensions, w.Metrics))
			break
		}
	}
	return strings.Join(d, "; ")
}

func sameValues(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		fa, oka := a[i].(float64)
		fb, okb := b[i].(float64)
		if oka != okb || a[i] == nil != (b[i] == nil) || oka && math.Abs(fa-fb) > 1e-6 {
			return false
		}
	}
	return true
}

func intp(p *int) string {
	if p == nil {
		return "absent"
	}
	return strconv.Itoa(*p)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
