package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulsehq/pulse/metric"
)

// TestSumMetric runs the built binary with the commented example config of
// docs/ and sends purchases with decimal prices, each batch resent and the
// whole resent again after a SIGKILL: the sums and averages of /v1/query
// and /v1/top must be exact (19.99*3 + 5.01 = 64.98, never 64.97999...),
// and a replay of the archive into a new namespace must answer the same.
func TestSumMetric(t *testing.T) {
	cfg, err := filepath.Abs(filepath.Join("..", "docs", "metrics.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, "--metrics-config", cfg, "--archive-max-age", "200ms", "--rate-ip", "-1", "--rate-site", "-1")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	now := time.Now().UnixMilli()
	ev := func(id, typ, props string) string {
		return fmt.Sprintf(`{"id":%q,"site":"shop","type":%q,"ts":%d,"uid":"u-%s","url":"https://shop.example/buy","props":{%s}}`,
			id, typ, now, id, props)
	}
	batches := [][]string{
		{ev("p1", "purchase", `"price":19.99,"plan":"pro"`), ev("p2", "purchase", `"price":19.99,"plan":"pro"`)},
		{ev("p3", "purchase", `"price":"19.99","plan":"pro"`), ev("p4", "purchase", `"price":"5.01","plan":"basic"`)},
		// No number: counted nowhere in revenue or order_value.
		{ev("p5", "purchase", `"price":"free","plan":"pro"`), ev("p6", "purchase", `"plan":"basic"`)},
		{ev("v1", "pageview", `"price":1000`)},
	}
	send := func() {
		for _, b := range batches {
			body := []byte("[" + strings.Join(b, ",") + "]")
			// Every batch twice, as a tracker retrying a lost answer.
			for range 2 {
				if code, res, err := s.post(ctx, body, "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"); err != nil || code != http.StatusAccepted {
					t.Fatalf("post: %d %+v %v", code, res, err)
				}
			}
		}
	}
	want := sumAnswers{
		revenue: "64.98", byPlan: map[string]string{"pro": "59.97", "basic": "5.01"},
		avg: "16.245", avgEvents: 4, avgByPlan: map[string]string{"pro": "19.99", "basic": "5.01"},
		top: `[{"value":"pro","sum":59.97},{"value":"basic","sum":5.01}]`,
	}
	from, to := now-2*time.Hour.Milliseconds(), now+time.Hour.Milliseconds()

	send()
	waitShopEvents(ctx, t, s, 7, from, to)
	first := readSums(ctx, t, s, from, to)
	want.check(t, "after resends", first)

	s.stop(syscall.SIGKILL)
	s.run()
	send()
	waitShopEvents(ctx, t, s, 7, from, to)
	want.check(t, "after a SIGKILL and a resend of everything", readSums(ctx, t, s, from, to))

	// An avg metric has no top-K, and says so.
	code, body := getStatus(ctx, t, s, "/v1/top", url.Values{"site": {"shop"}, "metric": {"order_value"}, "dim": {"props.plan"},
		"from": {fmt.Sprint(from)}, "to": {fmt.Sprint(to)}})
	if code != http.StatusBadRequest || !strings.Contains(body, `metric: metric \"order_value\" is an average`) {
		t.Errorf("top of an avg metric: %d %s, want 400 naming the metric", code, body)
	}

	if out, err := s.pulse(ctx, "replay", "--namespace", "v2", "--metrics-config", cfg, "--promote"); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	first.check(t, "after a replay into v2", readSums(ctx, t, s, from, to))
	t.Logf("revenue %s (pro %s, basic %s), order_value %s over %d events, top %s; identical after a SIGKILL with resends and after a replay",
		first.revenue, first.byPlan["pro"], first.byPlan["basic"], first.avg, first.avgEvents, first.top)
}

// sumAnswers is what TestSumMetric reads, numbers as the JSON wrote them.
type sumAnswers struct {
	revenue   string
	byPlan    map[string]string
	avg       string
	avgEvents int64
	avgByPlan map[string]string
	top       string
}

// check compares got with w (fmt prints maps sorted by key).
func (w sumAnswers) check(t *testing.T, when string, got sumAnswers) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(w) {
		t.Errorf("%s:\n got %+v\nwant %+v", when, got, w)
	}
}

// waitShopEvents waits until the built-in events metric of site shop counts n
// events at the 1d step: every distinct event applied. More is a failure:
// a resend counted twice.
func waitShopEvents(ctx context.Context, t *testing.T, s *server, n int64, from, to int64) {
	t.Helper()
	var got int64
	for ctx.Err() == nil {
		var r queryResult
		if err := s.get(ctx, "/v1/query", queryValues("shop", "events", "1d", "", from, to), &r); err != nil {
			t.Fatal(err)
		}
		got = 0
		for _, sr := range r.Series {
			for _, p := range sr.Points {
				got += int64(p[1])
			}
		}
		if got >= n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got != n {
		t.Fatalf("events of shop: %d, want %d", got, n)
	}
}

// readSums reads revenue and order_value over [from, to] at the 1d step,
// adding the buckets' sums exactly (in cents) and checking that each avg
// point is its bucket's sum over its events.
func readSums(ctx context.Context, t *testing.T, s *server, from, to int64) sumAnswers {
	t.Helper()
	var out sumAnswers
	out.byPlan, out.avgByPlan = map[string]string{}, map[string]string{}
	for _, dim := range []string{"", "props.plan"} {
		var rev struct {
			Series []struct {
				Labels map[string]string `json:"labels"`
				Points [][2]json.Number  `json:"points"`
			} `json:"series"`
		}
		if err := s.get(ctx, "/v1/query", queryValues("shop", "revenue", "1d", dim, from, to), &rev); err != nil {
			t.Fatal(err)
		}
		for _, sr := range rev.Series {
			var cents int64
			for _, p := range sr.Points {
				c, ok := metric.Scaled(p[1].String(), 2)
				if !ok {
					t.Fatalf("revenue point %s is no decimal of at most 2 places", p[1])
				}
				cents += c
			}
			if dim == "" {
				out.revenue = metric.FormatScaled(cents, 2)
			} else {
				out.byPlan[sr.Labels[dim]] = metric.FormatScaled(cents, 2)
			}
		}
		var avg struct {
			Series []struct {
				Labels map[string]string    `json:"labels"`
				Points [][2]json.RawMessage `json:"points"`
				Events [][2]int64           `json:"events"`
			} `json:"series"`
		}
		if err := s.get(ctx, "/v1/query", queryValues("shop", "order_value", "1d", dim, from, to), &avg); err != nil {
			t.Fatal(err)
		}
		for _, sr := range avg.Series {
			var value string
			var events int64
			for i, p := range sr.Points {
				if string(p[1]) == "null" {
					if sr.Events[i][1] != 0 {
						t.Errorf("order_value %v: null average over %d events", sr.Labels, sr.Events[i][1])
					}
					continue
				}
				if value != "" {
					t.Fatalf("order_value %v: more than one bucket with events; the test sends within one day", sr.Labels)
				}
				value, events = string(p[1]), sr.Events[i][1]
			}
			if dim == "" {
				out.avg, out.avgEvents = value, events
			} else {
				out.avgByPlan[sr.Labels[dim]] = value
			}
		}
	}
	code, body := getStatus(ctx, t, s, "/v1/top", url.Values{"site": {"shop"}, "metric": {"revenue"}, "dim": {"props.plan"},
		"from": {fmt.Sprint(from)}, "to": {fmt.Sprint(to)}})
	if code != http.StatusOK {
		t.Fatalf("top revenue: %d %s", code, body)
	}
	var top struct {
		Top json.RawMessage `json:"top"`
	}
	if err := json.Unmarshal([]byte(body), &top); err != nil {
		t.Fatal(err)
	}
	out.top = string(top.Top)
	return out
}

// getStatus fetches path with the read token and returns the status and body.
func getStatus(ctx context.Context, t *testing.T, s *server, path string, q url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url(path)+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+readToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
