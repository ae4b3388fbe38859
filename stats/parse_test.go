package stats

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// The contract's example body, as DESIGN.md writes it (the filter with
// "..." replaced, and a goal filter so that conversion_rate may be asked).
const contractBody = `{"site_id":"demo",
 "metrics":["visitors","pageviews","events","conversion_rate","sum:props.price","avg:props.price"],
 "date_range":"7d",
 "dimensions":["event:page","visit:source","time:hour"],
 "filters":[["is","event:page",["/pricing","/docs"]], ["contains","visit:source",["oogle"]],
            ["not",["is","visit:country",["DE"]]], ["or",[["is","event:props:plan",["pro"]],["matches","event:page",["^/blog/"]]]],
            ["is","event:goal",["signup"]]],
 "order_by":[["visitors","desc"]],
 "include":{"total_rows":true,"time_labels":true},
 "pagination":{"limit":100,"offset":0},
 "timezone":"Europe/Berlin"}`

func TestParseContractExample(t *testing.T) {
	q, err := Parse([]byte(contractBody), now)
	if err != nil {
		t.Fatal(err)
	}
	wantMetrics := []Metric{{Kind: Visitors}, {Kind: Pageviews}, {Kind: Events}, {Kind: ConversionRate}, {Kind: Sum, Prop: "price"}, {Kind: Avg, Prop: "price"}}
	wantDims := []Dimension{{Kind: Page}, {Kind: Source}, {Kind: TimeHour}}
	if q.Site != "demo" || !slices.Equal(q.Metrics, wantMetrics) || !slices.Equal(q.Dimensions, wantDims) {
		t.Errorf("site %q metrics %v dimensions %v", q.Site, q.Metrics, q.Dimensions)
	}
	if q.Location.String() != "Europe/Berlin" || q.Limit != 100 || q.Offset != 0 ||
		q.Include != (Include{TotalRows: true, TimeLabels: true}) {
		t.Errorf("location %v limit %d offset %d include %+v", q.Location, q.Limit, q.Offset, q.Include)
	}
	if len(q.OrderBy) != 1 || q.OrderBy[0] != (Order{Metric: true, Index: 0, Desc: true}) {
		t.Errorf("order_by %+v", q.OrderBy)
	}
	f := q.Filter
	if f.Op != And || len(f.Children) != 5 || f.Children[2].Op != Not || f.Children[3].Op != Or ||
		f.Children[3].Children[1].Op != Matches || f.Children[0].Clauses[1] != "/docs" {
		t.Errorf("filter %+v", f)
	}
	res, err := json.Marshal(q.Resolved())
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"site_id":"demo","metrics":["visitors","pageviews","events","conversion_rate","sum:props.price","avg:props.price"],` +
		`"date_range":["2026-12-01T00:00:00+01:00","2026-12-08T00:00:00+01:00"],"dimensions":["event:page","visit:source","time:hour"],` +
		`"filters":[["is","event:page",["/pricing","/docs"]],["contains","visit:source",["oogle"]],["not",["is","visit:country",["DE"]]],` +
		`["or",[["is","event:props:plan",["pro"]],["matches","event:page",["^/blog/"]]]],["is","event:goal",["signup"]]],` +
		`"order_by":[["visitors","desc"]],"include":{"total_rows":true,"time_labels":true,"imports":false},` +
		`"pagination":{"limit":100,"offset":0},"timezone":"Europe/Berlin"}`
	if string(res) != want {
		t.Errorf("resolved\n got %s\nwant %s", res, want)
	}
	if err := q.EventLevelOnly(); err == nil || err.Error() != `dimensions[1]: "visit:source" needs visits (sessions), which this executor does not count` {
		t.Errorf("EventLevelOnly: %v", err)
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name, extra string
		check       func(t *testing.T, q Query)
	}{
		{"defaults", ``, func(t *testing.T, q Query) {
			if q.Limit != MaxLimit || q.Offset != 0 || q.Location.String() != "UTC" || q.Filter.Op != And ||
				len(q.Filter.Children) != 0 || len(q.Dimensions) != 0 || q.OrderBy != nil {
				t.Errorf("%+v", q)
			}
		}},
		{"every metric", `{"metrics":["events","pageviews","visitors","visits","bounce_rate","visit_duration","conversion_rate","percentage","sum:props.a","avg:props.b"],"dimensions":["event:page"],"filters":[["is","event:goal",["signup"]]]}`,
			func(t *testing.T, q Query) {
				if len(q.Metrics) != 10 || q.Metrics[9] != (Metric{Kind: Avg, Prop: "b"}) {
					t.Errorf("%v", q.Metrics)
				}
			}},
		{"views_per_visit alone", `{"metrics":["views_per_visit"]}`, nil},
		{"every visit dimension", `{"dimensions":["visit:entry_page","visit:exit_page","visit:source","visit:referrer","visit:utm_source","visit:utm_medium","visit:utm_campaign","visit:utm_content","visit:utm_term","visit:device"]}`, nil},
		{"more visit dimensions", `{"dimensions":["visit:browser","visit:os","visit:country","event:page","event:hostname","event:goal","event:props:plan","time:day"]}`, nil},
		{"each time dimension", `{"dimensions":["time:minute"]}`, nil},
		{"prop names keep dots and colons", `{"metrics":["sum:props.a.b:c"],"dimensions":["event:props:x:y"]}`, func(t *testing.T, q Query) {
			if q.Metrics[0].Prop != "a.b:c" || q.Dimensions[0].Prop != "x:y" {
				t.Errorf("%v %v", q.Metrics, q.Dimensions)
			}
		}},
		{"session metrics with event:page", `{"metrics":["visits","bounce_rate"],"dimensions":["event:page"]}`, nil},
		{"conversion_rate with a goal dimension", `{"metrics":["conversion_rate"],"dimensions":["event:goal"]}`, nil},
		{"percentage with a dimension", `{"metrics":["percentage"],"dimensions":["visit:device"]}`, nil},
		{"order by a dimension", `{"dimensions":["event:page"],"order_by":[["event:page","asc"],["visitors","desc"]]}`, func(t *testing.T, q Query) {
			if q.OrderBy[0] != (Order{Index: 0}) || q.OrderBy[1] != (Order{Metric: true, Desc: true}) {
				t.Errorf("%+v", q.OrderBy)
			}
		}},
		{"default ordering: time asc, first metric desc", `{"metrics":["pageviews","visitors"],"dimensions":["event:page","time"]}`, func(t *testing.T, q Query) {
			if got := q.Ordering(); !slices.Equal(got, []Order{{Index: 1}, {Metric: true, Index: 0, Desc: true}}) {
				t.Errorf("%+v", got)
			}
		}},
		{"integer clauses", `{"filters":[["is","event:props:code",[404,-1,"x"]]]}`, func(t *testing.T, q Query) {
			if got := q.Filter.Children[0].Clauses; !slices.Equal(got, []string{"404", "-1", "x"}) {
				t.Errorf("%q", got)
			}
		}},
		{"case_sensitive modifier", `{"filters":[["contains","event:page",["BLOG"],{"case_sensitive":false}],["is","event:page",["/"],{}]]}`, func(t *testing.T, q Query) {
			if q.Filter.Children[0].CaseSensitive || !q.Filter.Children[1].CaseSensitive {
				t.Errorf("%+v", q.Filter.Children)
			}
		}},
		{"goal and hostname at the top level", `{"filters":[["is","event:goal",["signup"]],["contains","event:hostname",["example"]]]}`, nil},
		{"country codes", `{"filters":[["is_not","visit:country",["DE","us"]],["contains","visit:country",["D"]]]}`, nil},
		{"nested and, or, not", `{"filters":[["and",[["or",[["not",["is","event:page",["/a"]]],["matches_not","event:page",["x"]]]]]]]}`, nil},
		{"include and pagination", `{"include":{"imports":true},"pagination":{"limit":1,"offset":5}}`, func(t *testing.T, q Query) {
			if !q.Include.Imports || q.Limit != 1 || q.Offset != 5 {
				t.Errorf("%+v", q)
			}
		}},
		{"time labels with time", `{"dimensions":["time"],"include":{"time_labels":true}}`, nil},
		{"whitespace", "{\"metrics\" : [ \"visitors\" ] , \"pagination\": { \"limit\" : 7 } }", func(t *testing.T, q Query) {
			if q.Limit != 7 {
				t.Errorf("limit %d", q.Limit)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustParse(t, tt.extra, now)
			if tt.check != nil {
				tt.check(t, q)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	deep := `["is","event:page",["/"]]`
	for i := 0; i < MaxFilterDepth; i++ {
		deep = `["not",` + deep + `]`
	}
	many := `["is","event:page",["/"]]` + strings.Repeat(`,["is","event:page",["/"]]`, MaxFilterNodes)
	tests := []struct {
		name, body string // body: a whole body when it starts with "!", else extra keys
		want       string
	}{
		{"not JSON", `!{`, `body: must be a JSON object`},
		{"not an object", `![1]`, `body: must be a JSON object`},
		{"null", `!null`, `body: must be a JSON object`},
		{"trailing data", `!{"site_id":"demo"} x`, `body: must be a JSON object`},
		{"too large", `!` + strings.Repeat(" ", MaxBodyBytes+1), `body: larger than 262144 bytes`},
		{"unknown key", `{"foo":1}`, `body: unknown key "foo"; allowed: site_id, metrics, date_range, dimensions, filters, order_by, include, pagination, timezone`},
		{"keys are case sensitive", `{"Site_ID":"x"}`, `body: unknown key "Site_ID"; allowed: site_id, metrics, date_range, dimensions, filters, order_by, include, pagination, timezone`},
		{"no site", `{"site_id":"-"}`, `site_id: required`},
		{"no metrics", `{"metrics":"-"}`, `metrics: required`},
		{"no range", `{"date_range":"-"}`, `date_range: required`},
		{"site not a string", `{"site_id":5}`, `site_id: must be a string`},
		{"bad site", `{"site_id":"Demo Site"}`, `site_id: must match [a-z0-9_.-]{1,64}`},
		{"empty metrics", `{"metrics":[]}`, `metrics: must hold 1 to 20 metrics`},
		{"too many metrics", `{"metrics":["events"` + strings.Repeat(`,"visitors"`, MaxMetrics) + `]}`, `metrics: must hold 1 to 20 metrics`},
		{"metrics not a list", `{"metrics":"visitors"}`, `metrics: must be a list`},
		{"unknown metric", `{"metrics":["visitors","events","foo"]}`, `metrics[2]: unknown metric "foo"`},
		{"metric not a string", `{"metrics":[1]}`, `metrics[0]: must be a string`},
		{"duplicate metric", `{"metrics":["visitors","visitors"]}`, `metrics[1]: "visitors" is listed twice`},
		{"empty prop", `{"metrics":["sum:props."]}`, `metrics[0]: prop name of "sum:props." must be 1 to 64 bytes`},
		{"long prop", `{"metrics":["avg:props.` + strings.Repeat("p", 65) + `"]}`, `metrics[0]: prop name of "avg:props.` + strings.Repeat("p", 65) + `" must be 1 to 64 bytes`},
		{"control in prop", `{"dimensions":["event:props:a\u0001"]}`, "dimensions[0]: prop name of \"event:props:a\\x01\" must not hold control characters"},
		{"unknown dimension", `{"dimensions":["event:nope"]}`, `dimensions[0]: unknown dimension "event:nope"`},
		{"empty props dimension", `{"dimensions":["event:props:"]}`, `dimensions[0]: prop name of "event:props:" must be 1 to 64 bytes`},
		{"duplicate dimension", `{"dimensions":["event:page","event:page"]}`, `dimensions[1]: "event:page" is listed twice`},
		{"two time dimensions", `{"dimensions":["time:day","event:page","time"]}`, `dimensions[2]: only one time dimension is allowed`},
		{"too many dimensions", `{"dimensions":["event:props:a","event:props:b","event:props:c","event:props:d","event:props:e","event:props:f","event:props:g","event:props:h","event:props:i","event:props:j","event:props:k"]}`, `dimensions: must hold at most 10 dimensions`},
		{"bad timezone", `{"timezone":"Mars/Olympus"}`, `timezone: unknown time zone "Mars/Olympus"`},
		{"Local timezone", `{"timezone":"Local"}`, `timezone: must be an IANA time zone name such as Europe/Berlin`},
		{"path timezone", `{"timezone":"/etc/localtime"}`, `timezone: must be an IANA time zone name such as Europe/Berlin`},
		{"dotdot timezone", `{"timezone":"Europe/../Berlin"}`, `timezone: must be an IANA time zone name such as Europe/Berlin`},
		{"unknown range", `{"date_range":"2w"}`, `date_range: unknown range "2w"; one of realtime, 5m, 30m, 24h, day, 7d, 28d, 30d, 91d, month, 6mo, 12mo, year, all, or a list of two dates or two RFC 3339 times`},
		{"range not a string", `{"date_range":7}`, `date_range: must be a string such as "7d" or a list of two dates or two RFC 3339 times`},
		{"one date", `{"date_range":["2026-12-01"]}`, `date_range: a list must hold two strings: two dates or two RFC 3339 times`},
		{"bad date", `{"date_range":["2026-12-01","2026-13-01"]}`, `date_range[1]: "2026-13-01" is neither a date (2026-12-07) nor an RFC 3339 time (2026-12-07T10:00:00+01:00)`},
		{"mixed range", `{"date_range":["2026-12-01","2026-12-07T10:00:00Z"]}`, `date_range: mixes a date and a time; give two dates or two RFC 3339 times`},
		{"reversed dates", `{"date_range":["2026-12-07","2026-12-01"]}`, `date_range: the last date is before the first`},
		{"empty instants", `{"date_range":["2026-12-07T10:00:00Z","2026-12-07T11:00:00+01:00"]}`, `date_range: the end must be after the start`},
		{"before 1970", `{"date_range":["1969-12-31","1970-01-01"]}`, `date_range: must lie within the years 1970 to 2999 (UTC)`},
		{"year 3000", `{"date_range":["2999-12-31","2999-12-31"]}`, `date_range: must lie within the years 1970 to 2999 (UTC)`},
		{"filters not a list", `{"filters":{}}`, `filters: must be a list`},
		{"filter not a list", `{"filters":["is"]}`, `filters[0]: a filter must be a list: [op, dimension, [values...]], ["and"|"or", [filters...]] or ["not", filter]`},
		{"unknown operator", `{"filters":[["equals","event:page",["/"]]]}`, `filters[0][0]: unknown operator "equals"; one of is, is_not, contains, contains_not, matches, matches_not, and, or, not`},
		{"unknown filter dimension", `{"filters":[["is","event:nope",["x"]]]}`, `filters[0][1]: unknown dimension "event:nope"`},
		{"time filter", `{"filters":[["is","time:day",["2026-12-01"]]]}`, `filters[0][1]: cannot filter on "time:day"; narrow date_range instead`},
		{"no clauses", `{"filters":[["is","event:page",[]]]}`, `filters[0][2]: must be a list of at least one value`},
		{"float clause", `{"filters":[["is","event:page",["/",1.5]]]}`, `filters[0][2][1]: must be a string or an integer`},
		{"bool clause", `{"filters":[["is","event:page",[true]]]}`, `filters[0][2][0]: must be a string or an integer`},
		{"long clause", `{"filters":[["is","event:page",["` + strings.Repeat("a", MaxClauseBytes+1) + `"]]]}`, `filters[0][2][0]: longer than 2048 bytes`},
		{"five elements", `{"filters":[["is","event:page",["/"],{},1]]}`, `filters[0]: must be [op, dimension, [values...]] with an optional {"case_sensitive": bool}`},
		{"unknown modifier", `{"filters":[["is","event:page",["/"],{"fold":true}]]}`, `filters[0][3]: unknown key "fold"; allowed: case_sensitive`},
		{"modifier not a bool", `{"filters":[["is","event:page",["/"],{"case_sensitive":"no"}]]}`, `filters[0][3].case_sensitive: must be true or false`},
		{"bad regexp", `{"filters":[["matches","event:page",["ok","(unclosed"]]]}`, "filters[0][2][1]: invalid regular expression: error parsing regexp: missing closing ): `(unclosed`"},
		{"long regexp", `{"filters":[["matches_not","event:page",["` + strings.Repeat("a", MaxRegexBytes+1) + `"]]]}`, `filters[0][2][0]: regular expression longer than 512 bytes`},
		{"empty or", `{"filters":[["or",[]]]}`, `filters[0][1]: must be a list of at least one filter`},
		{"and with three elements", `{"filters":[["and",[],[]]]}`, `filters[0]: must be ["and", [filters...]]`},
		{"not of two", `{"filters":[["not",["is","event:page",["/"]],["is","event:page",["/"]]]]}`, `filters[0]: must be ["not", filter]`},
		{"nested error names its path", `{"filters":[["is","event:page",["/"]],["or",[["is","event:page",["/"]],["not",["is","event:nope",["x"]]]]]]}`, `filters[1][1][1][1][1]: unknown dimension "event:nope"`},
		{"goal inside or", `{"filters":[["or",[["is","event:goal",["a"]],["is","event:page",["/"]]]]]}`, `filters[0][1][0][1]: "event:goal" can only be filtered at the top level, not inside and, or or not`},
		{"hostname inside not", `{"filters":[["not",["is","event:hostname",["a"]]]]}`, `filters[0][1][1]: "event:hostname" can only be filtered at the top level, not inside and, or or not`},
		{"country not a code", `{"filters":[["is","visit:country",["Germany"]]]}`, `filters[0][2][0]: visit:country needs 2-letter country codes (ISO 3166 alpha-2), not "Germany"`},
		{"too deep", `{"filters":[` + deep + `]}`, `filters[0]` + strings.Repeat("[1]", MaxFilterDepth) + `: filters nest deeper than 8`},
		{"too many filters", `{"filters":[` + many + `]}`, `filters[100]: more than 100 filters in all`},
		{"too many clauses", `{"filters":[["is","event:page",[` + strings.TrimSuffix(strings.Repeat(`"a",`, MaxClauses+1), ",") + `]]]}`, `filters[0][2]: more than 1000 values in all filters`},
		{"conversion_rate alone", `{"metrics":["conversion_rate"]}`, `metrics[0]: "conversion_rate" can only be queried with an event:goal filter or dimension`},
		{"percentage without dimensions", `{"metrics":["visitors","percentage"]}`, `metrics[1]: "percentage" can only be queried with dimensions`},
		{"views_per_visit with a page filter", `{"metrics":["views_per_visit"],"filters":[["not",["is","event:page",["/"]]]]}`, `metrics[0]: "views_per_visit" cannot be queried with a filter on event:page`},
		{"views_per_visit with dimensions", `{"metrics":["views_per_visit"],"dimensions":["visit:source"]}`, `metrics[0]: "views_per_visit" cannot be queried with dimensions`},
		{"session metric with an event dimension", `{"metrics":["visitors","bounce_rate"],"dimensions":["event:page","event:props:plan"]}`, `metrics[1]: session metric "bounce_rate" cannot be queried with the event dimension "event:props:plan"`},
		{"visits by goal", `{"metrics":["visits"],"dimensions":["event:goal"]}`, `metrics[0]: session metric "visits" cannot be queried with the event dimension "event:goal"`},
		{"order by what is not queried", `{"order_by":[["pageviews","desc"]]}`, `order_by[0][0]: "pageviews" is not one of the query's metrics or dimensions`},
		{"order by unknown", `{"order_by":[["nope","desc"]]}`, `order_by[0][0]: unknown metric or dimension "nope"`},
		{"order direction", `{"order_by":[["visitors","down"]]}`, `order_by[0][1]: must be "asc" or "desc"`},
		{"order entry shape", `{"order_by":[["visitors"]]}`, `order_by[0]: must be a list of a metric or dimension and "asc" or "desc"`},
		{"order twice", `{"order_by":[["visitors","desc"],["visitors","asc"]]}`, `order_by[1][0]: "visitors" is ordered by twice`},
		{"time labels without time", `{"include":{"time_labels":true}}`, `include.time_labels: requires a time dimension`},
		{"unknown include", `{"include":{"comparisons":{}}}`, `include: unknown key "comparisons"; allowed: total_rows, time_labels, imports`},
		{"include not a bool", `{"include":{"total_rows":1}}`, `include.total_rows: must be true or false`},
		{"limit 0", `{"pagination":{"limit":0}}`, `pagination.limit: must be an integer from 1 to 10000`},
		{"limit too large", `{"pagination":{"limit":10001}}`, `pagination.limit: must be an integer from 1 to 10000`},
		{"limit not an integer", `{"pagination":{"limit":1.5}}`, `pagination.limit: must be an integer from 1 to 10000`},
		{"negative offset", `{"pagination":{"offset":-1}}`, `pagination.offset: must be an integer from 0 to 1000000000`},
		{"unknown pagination", `{"pagination":{"page":2}}`, `pagination: unknown key "page"; allowed: limit, offset`},
		{"minutes over a week", `{"date_range":"7d","dimensions":["time:minute"]}`, `dimensions[0]: time:minute is only supported for ranges up to 30 hours`},
		{"hours over decades", `{"date_range":["1990-01-01","2020-01-01"],"dimensions":["event:page","time:hour"]}`, `dimensions[1]: the range holds more than 100000 hour buckets; use a coarser grain or a shorter range`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b []byte
			if s, ok := strings.CutPrefix(tt.body, "!"); ok {
				b = []byte(s)
			} else {
				b = body(t, tt.body)
			}
			_, err := Parse(b, now)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want *Error %q", err, err, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestLevels(t *testing.T) {
	for _, tt := range []struct {
		name  string
		level Level
	}{
		{"events", EventLevel}, {"pageviews", EventLevel}, {"visitors", EventLevel}, {"conversion_rate", EventLevel},
		{"percentage", EventLevel}, {"sum:props.x", EventLevel}, {"avg:props.x", EventLevel},
		{"visits", VisitLevel}, {"bounce_rate", VisitLevel}, {"visit_duration", VisitLevel}, {"views_per_visit", VisitLevel},
	} {
		m, err := ParseMetric(tt.name)
		if err != nil || m.Level() != tt.level || m.String() != tt.name {
			t.Errorf("metric %s: %v %v %v", tt.name, m, m.Level(), err)
		}
	}
	for _, tt := range []struct {
		name  string
		level Level
	}{
		{"event:page", EventLevel}, {"event:hostname", EventLevel}, {"event:goal", EventLevel}, {"event:props:x", EventLevel},
		{"visit:referrer", EventLevel}, {"visit:device", EventLevel}, {"time", EventLevel}, {"time:minute", EventLevel},
		{"time:month", EventLevel}, {"visit:entry_page", VisitLevel}, {"visit:exit_page", VisitLevel},
		{"visit:source", VisitLevel}, {"visit:utm_term", VisitLevel}, {"visit:browser", EventLevel},
		{"visit:os", EventLevel}, {"visit:country", EventLevel}, {"visit:browser_version", EventLevel},
		{"visit:os_version", EventLevel},
	} {
		d, err := ParseDimension(tt.name)
		if err != nil || d.Level() != tt.level || d.String() != tt.name {
			t.Errorf("dimension %s: %v %v %v", tt.name, d, d.Level(), err)
		}
	}
	q := mustParse(t, `{"metrics":["visitors","events"],"dimensions":["visit:referrer","time:day"],"filters":[["or",[["is","visit:device",["Mobile"]],["not",["is","visit:utm_source",["x"]]]]]]}`, now)
	if err := q.EventLevelOnly(); err == nil || err.Error() != `filters[0]: filter on "visit:utm_source" needs visits (sessions), which this executor does not count` {
		t.Errorf("EventLevelOnly: %v", err)
	}
	q = mustParse(t, `{"metrics":["visitors","bounce_rate"]}`, now)
	if err := q.EventLevelOnly(); err == nil || err.Error() != `metrics[1]: "bounce_rate" needs visits (sessions), which this executor does not count` {
		t.Errorf("EventLevelOnly: %v", err)
	}
	q = mustParse(t, `{"metrics":["visitors"],"dimensions":["visit:device"],"filters":[["is","event:goal",["x"]]]}`, now)
	if err := q.EventLevelOnly(); err != nil {
		t.Errorf("EventLevelOnly: %v", err)
	}
}
