package query

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/access"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/stats"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"now", now, false},
		{"-15m", now.Add(-15 * time.Minute), false},
		{"-2h", now.Add(-2 * time.Hour), false},
		{"-7d", now.Add(-7 * 24 * time.Hour), false},
		{"1764244800000", time.UnixMilli(1764244800000), false},
		{"2026-11-27T11:00:00Z", now.Add(-time.Hour), false},
		{"2026-11-27T12:00:00+01:00", now.Add(-time.Hour), false},
		{"-xd", time.Time{}, true},
		{"-5", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"-1", time.Time{}, true},
	}
	for _, tc := range cases {
		got, err := parseTime("from", tc.in, now)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && got != tc.want.UnixMilli() {
			t.Errorf("%q = %v, want %v", tc.in, time.UnixMilli(got).UTC(), tc.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "from: ") {
			t.Errorf("%q: error %q does not name the parameter", tc.in, err)
		}
	}
}

func TestHandler(t *testing.T) {
	gin.SetMode(gin.TestMode)
	ctx := context.Background()
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	// Redis expires keys by its own clock, so the data sits near real time.
	now := time.Now().Truncate(time.Minute)
	rdb := redistest.Start(t).Client(t)
	st := redisagg.New(rdb, cat, redisagg.Config{Now: func() time.Time { return now }})
	u := metric.NewUpdate()
	ts := now.Add(-5 * time.Minute).UnixMilli()
	for _, s := range cat.Steps {
		b := s.Bucket(ts)
		for _, x := range []struct {
			path string
			n    int64
		}{{"/", 5}, {"/pricing", 3}, {"/docs", 1}} {
			u.Counts[metric.CountKey{Site: "demo", Metric: "pageviews", Step: s.Name, Bucket: b}] += x.n
			u.Counts[metric.CountKey{Site: "demo", Metric: "pageviews", Step: s.Name, Bucket: b, Dim: "path", Value: x.path}] += x.n
		}
		// Types of /api/event: Plausible's goal names, stored as sent.
		for _, x := range []struct {
			typ string
			n   int64
		}{{"pageview", 9}, {"Outbound Link: Click", 4}, {"Añadir 🛒", 2}, {"404", 1}} {
			u.Counts[metric.CountKey{Site: "demo", Metric: "events", Step: s.Name, Bucket: b}] += x.n
			u.Counts[metric.CountKey{Site: "demo", Metric: "events", Step: s.Name, Bucket: b, Dim: "type", Value: x.typ}] += x.n
		}
		for _, v := range []string{"a", "b", "c"} {
			u.AddUnique(metric.UniqueKey{Site: "demo", Metric: "visitors", Step: s.Name, Bucket: b}, v)
		}
	}
	if err := st.Apply(ctx, &metric.Commit{Shard: "s1", First: "1", Last: "1", Pos: metric.Position{Seq: "1"}, Update: u}); err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	New(st, cat, Config{Now: func() time.Time { return now }}).Register(r)

	type check func(t *testing.T, body []byte)
	series := func(step string, n int, sums map[string]int64) check {
		return func(t *testing.T, body []byte) {
			var res redisagg.Result
			if err := json.Unmarshal(body, &res); err != nil {
				t.Fatal(err)
			}
			if res.Step != step || len(res.Series) != len(sums) {
				t.Fatalf("step %s, %d series; want %s, %d: %s", res.Step, len(res.Series), step, len(sums), body)
			}
			for _, s := range res.Series {
				if len(s.Points) != n {
					t.Errorf("%d points, want %d", len(s.Points), n)
				}
				var sum int64
				for _, p := range s.Points {
					sum += p[1]
				}
				label := ""
				for _, v := range s.Labels {
					label = v
				}
				if sum != sums[label] {
					t.Errorf("series %v sums to %d, want %d", s.Labels, sum, sums[label])
				}
			}
		}
	}
	errIs := func(prefix string) check {
		return func(t *testing.T, body []byte) {
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || !strings.HasPrefix(e.Error, prefix) {
				t.Errorf("body %s, want error starting %q", body, prefix)
			}
		}
	}
	cases := []struct {
		name, url string
		status    int
		check     check
	}{
		{"default range and step", "/v1/query?site=demo&metric=pageviews", 200, series("10s", 91, map[string]int64{"": 9})},
		{"explicit step", "/v1/query?site=demo&metric=pageviews&from=-1h&step=1m", 200, series("1m", 61, map[string]int64{"": 9})},
		{"default step coarsens", "/v1/query?site=demo&metric=pageviews&from=-7d", 200, series("1h", 169, map[string]int64{"": 9})},
		{"group by", "/v1/query?site=demo&metric=pageviews&group_by=path&limit=2", 200, series("10s", 91, map[string]int64{"/": 5, "/pricing": 3})},
		{"unique", "/v1/query?site=demo&metric=visitors&from=-1h&step=1h", 200, series("1h", 2, map[string]int64{"": 3})},
		{"catalog", "/v1/metrics", 200, func(t *testing.T, body []byte) {
			for _, want := range []string{`"name":"pageviews"`, `"kind":"unique"`, `"dimensions":["path","referrer","device"]`, `"retention":"6h"`, `"retention":"400d"`} {
				if !strings.Contains(string(body), want) {
					t.Errorf("catalog lacks %s: %s", want, body)
				}
			}
		}},
		{"top", "/v1/top?site=demo&metric=pageviews&dim=path&from=-1h&k=2", 200, func(t *testing.T, body []byte) {
			var res topJSON
			if err := json.Unmarshal(body, &res); err != nil {
				t.Fatal(err)
			}
			if len(res.Top) != 2 || res.Top[0] != (redisagg.TopEntry{Value: "/", Count: 5}) || res.Top[1] != (redisagg.TopEntry{Value: "/pricing", Count: 3}) {
				t.Errorf("top %s", body)
			}
		}},
		{"events by free type names", "/v1/query?site=demo&metric=events&group_by=type&from=-1h&step=1h", 200,
			series("1h", 2, map[string]int64{"pageview": 9, "Outbound Link: Click": 4, "Añadir 🛒": 2, "404": 1})},
		{"top free type names", "/v1/top?site=demo&metric=events&dim=type&from=-1h&k=3", 200, func(t *testing.T, body []byte) {
			var res topJSON
			if err := json.Unmarshal(body, &res); err != nil {
				t.Fatal(err)
			}
			want := []redisagg.TopEntry{{Value: "pageview", Count: 9}, {Value: "Outbound Link: Click", Count: 4}, {Value: "Añadir 🛒", Count: 2}}
			if !reflect.DeepEqual(res.Top, want) {
				t.Errorf("top %s, want %v", body, want)
			}
		}},
		{"missing site", "/v1/query?metric=pageviews", 400, errIs("site: required")},
		{"bad site", "/v1/query?site=DEMO!&metric=pageviews", 400, errIs("site: ")},
		{"unknown metric", "/v1/query?site=demo&metric=nope", 400, errIs("metric: unknown metric")},
		{"unknown dim", "/v1/query?site=demo&metric=pageviews&group_by=color", 400, errIs("group_by: ")},
		{"group by unique", "/v1/query?site=demo&metric=visitors&group_by=path", 400, errIs("group_by: ")},
		{"bad from", "/v1/query?site=demo&metric=pageviews&from=soon", 400, errIs("from: ")},
		{"bad to", "/v1/query?site=demo&metric=pageviews&to=-x", 400, errIs("to: ")},
		{"from after to", "/v1/query?site=demo&metric=pageviews&from=-1m&to=-2m", 400, errIs("from: ")},
		{"too many buckets", "/v1/query?site=demo&metric=pageviews&from=-1d&step=10s", 400, errIs("step: the range is 8641 buckets")},
		{"unknown step", "/v1/query?site=demo&metric=pageviews&step=5s", 400, errIs("step: unknown step")},
		{"bad limit", "/v1/query?site=demo&metric=pageviews&group_by=path&limit=0", 400, errIs("limit: ")},
		{"bad k", "/v1/top?site=demo&metric=pageviews&dim=path&k=many", 400, errIs("k: ")},
		{"top without dim", "/v1/top?site=demo&metric=pageviews", 400, errIs("dim: required")},
		{"top unknown dim", "/v1/top?site=demo&metric=pageviews&dim=color", 400, errIs("dim: ")},
		{"top unique", "/v1/top?site=demo&metric=visitors&dim=path", 400, errIs("metric: ")},
		{"top range too long", "/v1/top?site=demo&metric=pageviews&dim=path&from=-2000d", 400, errIs("from: ")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.url, nil))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			tc.check(t, w.Body.Bytes())
		})
	}
}

func TestHandlerStoreDown(t *testing.T) {
	gin.SetMode(gin.TestMode)
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t)
	st := redisagg.New(srv.Client(t), cat, redisagg.Config{})
	srv.Kill()
	r := gin.New()
	New(st, cat, Config{}).Register(r)
	for _, url := range []string{"/v1/query?site=demo&metric=pageviews", "/v1/top?site=demo&metric=pageviews&dim=path"} {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, url, nil))
		if w.Code != http.StatusServiceUnavailable || !strings.HasPrefix(w.Body.String(), `{"error":"store: `) {
			t.Errorf("%s: %d %s, want 503 with a store error", url, w.Code, w.Body)
		}
	}
}

// echo answers a Stats API query with no rows, echoing the query as
// resolved: what the handler passed on.
type echo struct{}

func (echo) Answer(_ context.Context, q stats.Query) (stats.Answer, error) {
	return stats.Answer{Results: []stats.ResultRow{}, Meta: stats.Meta{Approximate: []string{}}, Query: q.Resolved()}, nil
}

// TestStatsSiteZone: a Stats API body without timezone is answered in
// its site's zone; one with a timezone, or of another site, as it says.
func TestStatsSiteZone(t *testing.T) {
	gin.SetMode(gin.TestMode)
	zones, err := stats.ParseSiteZones("demo=Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.Use(access.NewTokens("readtokenreadtoken1234", "").RequireRead())
	New(nil, nil, Config{Stats: echo{}, SiteZones: zones}).Register(r)
	for body, want := range map[string]string{
		`{"site_id":"demo","metrics":["visitors"],"date_range":"day"}`:                         "Europe/Berlin",
		`{"site_id":"demo","metrics":["visitors"],"date_range":"day","timezone":"Asia/Tokyo"}`: "Asia/Tokyo",
		`{"site_id":"shop","metrics":["visitors"],"date_range":"day"}`:                         "UTC",
	} {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/v1/stats", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer readtokenreadtoken1234")
		r.ServeHTTP(w, req)
		var a struct {
			Query struct {
				Timezone string `json:"timezone"`
			} `json:"query"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", body, w.Code, w.Body)
		}
		if a.Query.Timezone != want {
			t.Errorf("%s: answered in %s, want %s", body, a.Query.Timezone, want)
		}
	}
}
