package query

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
)

func TestAverage(t *testing.T) {
	tests := []struct {
		sum, n   int64
		decimals int
		want     any
	}{
		{6498, 4, 2, 16.245},
		{1000, 3, 2, 10.0 / 3},
		{-501, 1, 2, -5.01},
		{7, 2, 0, 3.5},
		{1, 1, 6, 0.000001},
		{metric.MaxScaled, 1 << 40, 6, float64(metric.MaxScaled) / (1 << 40) / 1e6},
		{5, 0, 2, nil},
	}
	for _, tt := range tests {
		if got := average(tt.sum, tt.n, tt.decimals); got != tt.want {
			t.Errorf("average(%d, %d, %d) = %v, want %v", tt.sum, tt.n, tt.decimals, got, tt.want)
		}
	}
}

// TestHandlerSums reads sum and avg metrics through the handlers from a
// real redis-server: the numbers come out in units, written from the
// stored integers (64.98, not 64.97999999999999).
func TestHandlerSums(t *testing.T) {
	gin.SetMode(gin.TestMode)
	ctx := context.Background()
	cat, err := metric.NewCatalog(append(metric.Builtins(),
		metric.Def{Name: "revenue", Kind: metric.Sum, Field: "props.price", Decimals: 2, Dims: []string{"plan"}},
		metric.Def{Name: "order_value", Kind: metric.Avg, Field: "props.price", Decimals: 2, Dims: []string{"plan"}},
	), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Minute)
	rdb := redistest.Start(t).Client(t)
	st := redisagg.New(rdb, cat, redisagg.Config{Now: func() time.Time { return now }})
	u := metric.NewUpdate()
	ts := now.Add(-5 * time.Minute).UnixMilli()
	for _, s := range cat.Steps {
		b := s.Bucket(ts)
		for _, x := range []struct {
			plan   string
			sum, n int64
		}{{"pro", 5997, 3}, {"basic", 501, 1}} {
			for _, m := range []string{"revenue", "order_value"} {
				u.Counts[metric.CountKey{Site: "shop", Metric: m, Step: s.Name, Bucket: b}] += x.sum
				u.Counts[metric.CountKey{Site: "shop", Metric: m, Step: s.Name, Bucket: b, Dim: "plan", Value: x.plan}] += x.sum
			}
			u.Samples[metric.CountKey{Site: "shop", Metric: "order_value", Step: s.Name, Bucket: b}] += x.n
			u.Samples[metric.CountKey{Site: "shop", Metric: "order_value", Step: s.Name, Bucket: b, Dim: "plan", Value: x.plan}] += x.n
		}
	}
	if err := st.Apply(ctx, &metric.Commit{Shard: "s1", First: "1", Last: "1", Pos: metric.Position{Seq: "1"}, Update: u}); err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	New(st, cat, Config{Now: func() time.Time { return now }}).Register(r)
	b1m := ts - ts%60_000
	span := fmt.Sprintf("&step=1m&from=%d&to=%d", b1m-60_000, b1m)
	cases := []struct {
		name, url string
		status    int
		want      []string // substrings of the body
	}{
		{"sum", "/v1/query?site=shop&metric=revenue" + span, 200,
			[]string{fmt.Sprintf(`"points":[[%d,0],[%d,64.98]]`, b1m-60_000, b1m)}},
		{"sum by plan", "/v1/query?site=shop&metric=revenue&group_by=plan" + span, 200,
			[]string{fmt.Sprintf(`{"labels":{"plan":"pro"},"points":[[%d,0],[%d,59.97]]}`, b1m-60_000, b1m),
				fmt.Sprintf(`{"labels":{"plan":"basic"},"points":[[%d,0],[%d,5.01]]}`, b1m-60_000, b1m)}},
		{"avg", "/v1/query?site=shop&metric=order_value" + span, 200,
			[]string{fmt.Sprintf(`"points":[[%d,null],[%d,16.245]],"events":[[%d,0],[%d,4]]`, b1m-60_000, b1m, b1m-60_000, b1m)}},
		{"avg by plan at 10s", fmt.Sprintf("/v1/query?site=shop&metric=order_value&group_by=plan&step=10s&from=%d&to=%d", ts, ts), 200,
			[]string{fmt.Sprintf(`{"labels":{"plan":"pro"},"points":[[%d,19.99]],"events":[[%d,3]]}`, ts-ts%10_000, ts-ts%10_000),
				`{"labels":{"plan":"basic"},"points":[[`}},
		{"top by sum", "/v1/top?site=shop&metric=revenue&dim=plan&from=-1h", 200,
			[]string{`"top":[{"value":"pro","sum":59.97},{"value":"basic","sum":5.01}]`}},
		{"top of an avg", "/v1/top?site=shop&metric=order_value&dim=plan", 400,
			[]string{`{"error":"metric: metric \"order_value\" is an average, which has no top-K`}},
		{"catalog", "/v1/metrics", 200, []string{`"name":"revenue","kind":"sum","dimensions":["plan"],"field":"props.price","decimals":2`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.url, nil))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("invalid JSON: %s", w.Body)
			}
			for _, s := range tc.want {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("body lacks %s:\n%s", s, w.Body)
				}
			}
		})
	}
}
