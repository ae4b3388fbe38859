package systemtest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDimensionOverflow: past 1000 distinct values of a dimension in one
// bucket, further values count under "(other)", exactly, and the folds are
// counted in pulse_aggregate_dimension_overflow_total; totals stay exact.
func TestDimensionOverflow(t *testing.T) {
	s := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const distinct, maxValues = 1100, 1000
	ts := time.Now().Add(-time.Minute).Truncate(time.Minute).UnixMilli() // every event in one bucket of each step
	for start := 0; start < distinct; start += 500 {
		var b strings.Builder
		for i := start; i < min(start+500, distinct); i++ {
			fmt.Fprintf(&b, `{"id":"o%d","site":"many","type":"pageview","ts":%d,"url":"https://example.com/p%d"}`+"\n", i, ts, i)
		}
		status, accepted, msgs, err := s.do(ctx, hostileCase{body: []byte(b.String())})
		if err != nil || status != http.StatusAccepted || accepted != min(500, distinct-start) {
			t.Fatalf("send: %d, %d accepted, %q, %v", status, accepted, msgs, err)
		}
	}
	s.waitPageviews(t, ctx, "many", distinct)
	var res queryResult
	q := url.Values{"site": {"many"}, "metric": {"pageviews"}, "from": {strconv.FormatInt(ts, 10)}, "to": {strconv.FormatInt(ts, 10)},
		"step": {"1m"}, "group_by": {"path"}, "limit": {"3"}}
	if err := s.get(ctx, "/v1/query", q, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Series) == 0 || res.Series[0].Labels["path"] != "(other)" || res.Series[0].Points[0][1] != distinct-maxValues {
		t.Fatalf("top series %+v, want (other) with %d", res.Series, distinct-maxValues)
	}
	resp, err := http.Get(s.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "pulse_aggregate_dimension_overflow_total "); ok {
			// Each step folds the same 100 values.
			if n, _ := strconv.ParseFloat(v, 64); n < distinct-maxValues {
				t.Fatalf("overflow counter %s, want at least %d", v, distinct-maxValues)
			}
			return
		}
	}
	t.Fatal("no pulse_aggregate_dimension_overflow_total in /metrics")
}
