package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const testReadToken = "read-secret-0123456789"

// testConfig is a node of every role on the embedded Redis and a local
// stream in a temporary directory, listening on a free loopback port.
func testConfig(t *testing.T) Config {
	return Config{
		Addr:            "127.0.0.1:0",
		Data:            t.TempDir(),
		Roles:           map[string]bool{"ingest": true, "aggregate": true, "push": true, "archive": true},
		Stream:          "local",
		Redis:           "embedded",
		Shards:          2,
		ReadToken:       testReadToken,
		AdminToken:      "admin-secret-0123456789",
		Namespace:       "v1",
		DedupWindow:     10 * time.Minute,
		AllowedLateness: 24 * time.Hour,
		RetentionBytes:  1 << 30,
		RateIP:          -1,
		RateSite:        -1,
		ArchiveMaxAge:   time.Minute,
		DrainDelay:      time.Second,
		Group:           Group{Mode: "off", LeaseTTL: 10 * time.Second},
	}
}

// started is a node running in the background of a test.
type started struct {
	base string // http://HOST:PORT
	addr string // HOST:PORT
	stop context.CancelFunc
	done <-chan struct{} // closed when run returned
	err  *error          // what run returned, once done is closed
}

func startNode(t *testing.T, cfg Config) started {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	addrs := make(chan net.Addr, 1)
	done := make(chan struct{})
	var err error
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	go func() {
		defer close(done)
		err = run(ctx, cfg, log, func(a net.Addr) { addrs <- a })
	}()
	select {
	case a := <-addrs:
		t.Cleanup(func() { cancel(); <-done })
		return started{base: "http://" + a.String(), addr: a.String(), stop: cancel, done: done, err: &err}
	case <-done:
		cancel()
		t.Fatalf("node ended before it listened: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("node did not listen within 30s")
	}
	return started{}
}

// get answers the status and body of GET base+path, on a connection of its
// own so that a closing listener shows.
func get(t *testing.T, url string) (int, string, error) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func waitUntil(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	end := time.Now().Add(within)
	for !ok() {
		if time.Now().After(end) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// queryTotal sums every point of metric events of site demo over the last
// hour.
func queryTotal(t *testing.T, base string) float64 {
	t.Helper()
	code, body, err := get(t, base+"/v1/query?site=demo&metric=events&from=-1h&step=1m&token="+testReadToken)
	if err != nil || code != http.StatusOK {
		t.Fatalf("query: %d %s %v", code, body, err)
	}
	var r struct {
		Series []struct {
			Points [][2]float64 `json:"points"`
		} `json:"series"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("query answer %q: %v", body, err)
	}
	var sum float64
	for _, s := range r.Series {
		for _, p := range s.Points {
			sum += p[1]
		}
	}
	return sum
}

// TestRunServesAndDrains: a node answers /healthz, becomes ready, counts
// an event it accepted; at a stop /readyz answers 503 "shutting down"
// while the other routes still answer, for the drain delay, then the
// listener closes and Run returns nil.
func TestRunServesAndDrains(t *testing.T) {
	cfg := testConfig(t)
	n := startNode(t, cfg)
	if code, body, err := get(t, n.base+"/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("/healthz: %d %q %v, want 200", code, body, err)
	}
	waitUntil(t, "/readyz 200", 30*time.Second, func() bool {
		code, _, err := get(t, n.base+"/readyz")
		return err == nil && code == http.StatusOK
	})

	ev := `{"id":"node-test-1","site":"demo","type":"pageview","url":"https://example.com/a"}`
	resp, err := http.Post(n.base+"/v1/collect", "text/plain", strings.NewReader(ev))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(b), `"accepted":1`) {
		t.Fatalf("/v1/collect: %s %s, want 202 accepted 1", resp.Status, b)
	}
	waitUntil(t, "the event counted by /v1/query", 30*time.Second, func() bool { return queryTotal(t, n.base) == 1 })

	stopped := time.Now()
	n.stop()
	waitUntil(t, "/readyz 503 shutting down", cfg.DrainDelay/2, func() bool {
		code, body, _ := get(t, n.base+"/readyz")
		return code == http.StatusServiceUnavailable && body == "shutting down\n"
	})
	if code, _, err := get(t, n.base+"/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz while draining: %d %v, want 200", code, err)
	}
	select {
	case <-n.done:
		if *n.err != nil {
			t.Errorf("run returned %v after the stop, want nil", *n.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of the stop")
	}
	if took := time.Since(stopped); took < cfg.DrainDelay {
		t.Errorf("run returned %s after the stop, before the %s drain delay ended", took, cfg.DrainDelay)
	}
	if c, err := net.DialTimeout("tcp", n.addr, time.Second); err == nil {
		c.Close()
		t.Errorf("listener %s still accepts after run returned", n.addr)
	}
}

// TestRunStartErrors: a setting that cannot work ends Run with an error
// naming it, whether found before the listener opens or at start-up.
func TestRunStartErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"redis scheme", func(c *Config) { c.Redis = "memcached://127.0.0.1:1" }, `--redis: "memcached://127.0.0.1:1" is not embedded`},
		{"stream scheme", func(c *Config) { c.Stream = "kafka://events" }, `--stream: "kafka://events" is not local or kinesis://NAME`},
		{"kinesis without name", func(c *Config) { c.Stream = "kinesis://" }, "--stream kinesis://: no stream name"},
		{"metrics config", func(c *Config) { c.MetricsConfig = "/nonexistent/metrics.yaml" }, "--metrics-config: "},
		{"listen", func(c *Config) { c.Addr = "256.0.0.1:0" }, "listen 256.0.0.1:0: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			tt.edit(&cfg)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			err := Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run: %v, want an error containing %q", err, tt.want)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Run waited for the deadline: %v", err)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"embedded", "embedded"},
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://:secret@cache:6379/0", "redis://***@cache:6379/0"},
		{"rediss://user:secret@cache:6380/1", "rediss://***@cache:6380/1"},
		{"redis-cluster://u:p@h1:7000,h2:7001", "redis-cluster://***@h1:7000,h2:7001"},
		{"user@host", "user@host"}, // no scheme: nothing to tell a password by
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
