package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/loadgen"
)

// TestEvents: the bodies the benches send are events Pulse accepts, each
// with an id of its own across bodies, counted by the events metric (a
// browser, not a bot).
func TestEvents(t *testing.T) {
	tests := []struct {
		name string
		body func(seq *atomic.Int64, n int) []byte
		site string
	}{
		{"ingest", ingestEvents, "bench"},
		{"push", func(seq *atomic.Int64, n int) []byte { return pushEvents(seq, "bench-1a2b", n) }, "bench-1a2b"},
		{"e2e", func(seq *atomic.Int64, n int) []byte {
			tmpl := e2eTemplate("bench-1a2b", n)
			body := slices.Clone(tmpl.Body)
			// Request i of n events holds events i*n .. i*n+n-1: with the
			// sizes below (1, 50, 7) these do not overlap.
			tmpl.Fill(body, seq.Add(1))
			return body
		}, "bench-1a2b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seq atomic.Int64
			ids := map[string]bool{}
			for _, n := range []int{1, 50, 7} {
				evs, _, rejects, err := event.Decode(tt.body(&seq, n), event.Limits{})
				if err != nil || len(rejects) != 0 {
					t.Fatalf("%d events: %v, rejects %+v", n, err, rejects)
				}
				if len(evs) != n {
					t.Fatalf("%d events decoded, want %d", len(evs), n)
				}
				for _, e := range evs {
					if ids[e.ID] {
						t.Fatalf("id %s sent twice", e.ID)
					}
					ids[e.ID] = true
					if e.Site != tt.site || e.Type != "pageview" {
						t.Fatalf("event %+v, want a pageview of %s", e, tt.site)
					}
					event.Enrich(&e, time.Now(), browserHeader().Get("User-Agent"))
					if e.Bot {
						t.Fatalf("the bench's User-Agent counts as a bot")
					}
				}
			}
		})
	}
}

func TestParseRates(t *testing.T) {
	tests := []struct {
		in      string
		want    []float64
		wantErr bool
	}{
		{"10000,50000", []float64{10000, 50000}, false},
		{" 2500 , 1e4", []float64{2500, 10000}, false},
		{"1000,0", nil, true},
		{"-5", nil, true},
		{"fast", nil, true},
		{"", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseRates(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("ParseRates(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestRound(t *testing.T) {
	tests := []struct{ in, want time.Duration }{
		{1234567 * time.Microsecond, 1235 * time.Millisecond},
		{12345 * time.Microsecond, 12300 * time.Microsecond},
		{1234 * time.Microsecond, 1200 * time.Microsecond},
		{987654 * time.Nanosecond, 990 * time.Microsecond},
	}
	for _, tt := range tests {
		if got := round(tt.in); got != tt.want {
			t.Errorf("round(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestAckLatencies(t *testing.T) {
	t0 := time.Unix(1764258000, 0)
	acks := []loadgen.Ack{
		{Sent: t0, Done: t0.Add(30 * time.Millisecond)},
		{Sent: t0.Add(time.Second), Done: t0.Add(time.Second + 10*time.Millisecond)},
		{Sent: t0.Add(2 * time.Second), Done: t0.Add(2*time.Second + 20*time.Millisecond)},
	}
	got := ackLatencies(acks)
	want := loadgen.Durations{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}
	if !slices.Equal(got, want) {
		t.Fatalf("ackLatencies = %v, want %v", got, want)
	}
}

func TestCentrifugoFrame(t *testing.T) {
	tests := []struct {
		name       string
		size       int
		pulseFrame float64
		want       int
	}{
		{"size set", 300, 120, 300},
		{"Pulse's mean, rounded", 0, 106.5, 107},
		{"no Pulse run", 0, 0, 200},
	}
	for _, tt := range tests {
		if got := centrifugoFrame(tt.size, tt.pulseFrame); got != tt.want {
			t.Errorf("%s: centrifugoFrame(%d, %v) = %d, want %d", tt.name, tt.size, tt.pulseFrame, got, tt.want)
		}
	}
}

// TestCentrifugoFeed: the push frame Centrifugo sends a subscriber for a
// publish, {"push":{"channel":C,"pub":{"data":D}}}, is the asked size, a
// few bytes less while the message number is short.
func TestCentrifugoFeed(t *testing.T) {
	for _, size := range []int{100, 200, 1000} {
		feed := centrifugoFeed(size)
		for _, i := range []int64{0, 41, 99998, 99999, 123456} {
			body, n := feed(i)
			var pub struct {
				Channel string          `json:"channel"`
				Data    json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(body, &pub); err != nil || n != 1 {
				t.Fatalf("publish body %s (%d messages): %v", body, n, err)
			}
			if pub.Channel != centrifugoChannel {
				t.Fatalf("published to %q", pub.Channel)
			}
			var data struct{ N int64 }
			if err := json.Unmarshal(pub.Data, &data); err != nil || data.N != i+1 {
				t.Fatalf("data %s, want n %d", pub.Data, i+1)
			}
			frame, _ := json.Marshal(map[string]any{"push": map[string]any{"channel": pub.Channel, "pub": map[string]any{"data": pub.Data}}})
			want := size - (6 - len(strconv.FormatInt(i+1, 10)))
			if len(frame) != want {
				t.Fatalf("size %d, message %d: push frame of %d bytes, want %d: %s", size, i+1, len(frame), want, frame)
			}
		}
	}
}

func TestCentrifugoConfig(t *testing.T) {
	b, err := centrifugoConfig(18000, "k3y")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		HTTPServer struct {
			Address string
			Port    int
		} `json:"http_server"`
		HTTPAPI struct{ Key string } `json:"http_api"`
		Channel struct {
			Namespaces []struct {
				Name                       string
				AllowSubscribeForAnonymous bool `json:"allow_subscribe_for_anonymous"`
			}
		}
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.HTTPServer.Address != "127.0.0.1" || c.HTTPServer.Port != 18000 || c.HTTPAPI.Key != "k3y" {
		t.Fatalf("config %s", b)
	}
	ns, _, _ := strings.Cut(centrifugoChannel, ":")
	if len(c.Channel.Namespaces) != 1 || c.Channel.Namespaces[0].Name != ns || !c.Channel.Namespaces[0].AllowSubscribeForAnonymous {
		t.Fatalf("namespace %q not open to anonymous subscribers: %s", ns, b)
	}
}

func TestFindCentrifugo(t *testing.T) {
	home, path := t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("PATH", path)
	if got, err := findCentrifugo("/opt/centrifugo"); err != nil || got != "/opt/centrifugo" {
		t.Fatalf("given a binary: %q, %v", got, err)
	}
	if _, err := findCentrifugo(""); err == nil || !strings.Contains(err.Error(), "go install") {
		t.Fatalf("none installed: %v, want how to install it", err)
	}
	onPath := filepath.Join(path, "centrifugo")
	if err := os.WriteFile(onPath, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findCentrifugo(""); err != nil || got != onPath {
		t.Fatalf("on PATH: %q, %v; want %s", got, err, onPath)
	}
	cached := filepath.Join(home, ".cache", "pulse", "bin", "centrifugo")
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cached, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findCentrifugo(""); err != nil || got != cached {
		t.Fatalf("in the cache and on PATH: %q, %v; want the cache's %s", got, err, cached)
	}
}

func TestBaselineHandler(t *testing.T) {
	srv := httptest.NewServer(BaselineHandler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/collect", "text/plain", bytes.NewReader(ingestEvents(new(atomic.Int64), 50)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d, want 204", resp.StatusCode)
	}
}

func TestWaitHTTP(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ready" && calls.Add(1) > 3 {
			return // 200
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ok := func(code int) bool { return code == http.StatusOK }
	if err := waitHTTP(srv.URL+"/ready", 10*time.Second, ok); err != nil {
		t.Fatalf("ready after 3 tries: %v", err)
	}
	if err := waitHTTP(srv.URL+"/never", 100*time.Millisecond, ok); err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Fatalf("never ready: %v, want the last status", err)
	}
}

// childEnv makes the test binary, run by TestChild, serve the baseline.
const childEnv = "PULSE_BENCH_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		serveBaselineChild()
		return
	}
	os.Exit(m.Run())
}

// serveBaselineChild serves the baseline on the --addr startChild appends,
// until interrupted, as `pulse bench baseline-server` does.
func serveBaselineChild() {
	addr := os.Args[len(os.Args)-1]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := ServeBaseline(ctx, addr); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// TestChild starts this test binary as a baseline server child, as Ingest
// starts pulse: it is healthy when startChild returns, /proc shows its
// memory, and stop ends it with an interrupt.
func TestChild(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: starts a child process")
	}
	t.Setenv(childEnv, "1")
	c, err := startChild(t.Context(), os.Args[0], "/")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+c.addr+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		c.stop()
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("child answered %d, want 204", resp.StatusCode)
	}
	if rss := rssKiB(c.pid()); rss == 0 {
		t.Errorf("no RSS for the child")
	}
	c.stop()
	if st := c.cmd.ProcessState; st == nil || !st.Success() {
		t.Fatalf("child after stop: %v, want exited 0 on the interrupt", st)
	}
}
