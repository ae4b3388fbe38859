package systemtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/redistest"
)

// readyzBody is /readyz's status and body (0 when nothing answers).
func readyzBody(s *server) (int, string) {
	resp, err := http.Get(s.url("/readyz"))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDrainOnSigterm: at SIGTERM /readyz turns 503 "shutting down" at once,
// while clients that keep sending events get neither a 5xx nor a reset or
// refused connection for as long as the drain delay lasts; after a restart
// every acknowledged event is counted exactly.
func TestDrainOnSigterm(t *testing.T) {
	const drain = 3 * time.Second
	s := newServer(t, "--drain-delay", drain.String(), "--rate-ip", "-1", "--rate-site", "-1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	now := time.Now()
	tr := newTruth()
	l := startLoad(ctx, t, func() *server { return s }, tr, now, loadConfig{Workers: 4, Seed: 11, IDPrefix: "drain"})
	waitFor(ctx, t, "events acknowledged before the stop", func() bool { return l.requests.Load() >= 50 })
	failed := func() int64 { return l.unanswered.Load() + l.refused.Load() + l.limited.Load() }
	if n := failed(); n != 0 {
		t.Fatalf("%d requests failed before the stop", n)
	}

	term := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- s.stop(syscall.SIGTERM) }()
	waitFor(ctx, t, "/readyz 503 shutting down", func() bool {
		code, body := readyzBody(s)
		return code == http.StatusServiceUnavailable && body == "shutting down\n"
	})
	atReadyz := l.requests.Load()
	// Up to shortly before the delay ends (the listener closes at its end).
	time.Sleep(time.Until(term.Add(drain - 300*time.Millisecond)))
	answered := l.requests.Load() - atReadyz
	if n := failed(); n != 0 {
		t.Errorf("during the drain delay %d requests got a transport error, %d a 503, %d a 429",
			l.unanswered.Load(), l.refused.Load(), l.limited.Load())
	}
	if answered < 20 {
		t.Errorf("only %d requests answered 202 during the drain delay; want the node to keep serving", answered)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("pulse exited with %v after SIGTERM, want status 0", err)
		}
	case <-ctx.Done():
		t.Fatal("pulse did not exit after SIGTERM")
	}
	if took := time.Since(term); took < drain {
		t.Errorf("pulse exited %s after SIGTERM, before the %s drain delay ended", took, drain)
	}
	t.Logf("%d requests answered 202 while draining; %d events acknowledged", answered, l.acked.Load())

	s.run() // the senders' retries of requests cut at the close land here
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	waitExact(ctx, t, func() *server { return s }, tr, now)
}

// TestStartWaitsForRedis: pulse started before its Redis listens stays up,
// answers /healthz 200 and /readyz 503 naming Redis, and asks clients to
// retry (503 with Retry-After) instead of exiting; once redis-server starts
// on that port it becomes ready and counts an event. A SIGTERM while it
// waits ends it cleanly.
func TestStartWaitsForRedis(t *testing.T) {
	port := redistest.FreePort(t)
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	s := newServerStarting(t, "--redis", url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	waitFor(ctx, t, "several attempts with backoff", func() bool {
		log, _ := os.ReadFile(s.log.Name())
		return bytes.Contains(log, []byte(`"attempt":3`))
	})
	resp, err := http.Get(s.url("/healthz"))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz while waiting for Redis: %v %v", resp, err)
	}
	resp.Body.Close()
	if code, body := readyzBody(s); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "waiting for redis "+url) {
		t.Fatalf("/readyz while waiting for Redis: %d %q, want 503 naming %s", code, body, url)
	}
	resp, err = http.Post(s.url("/v1/collect"), "text/plain", strings.NewReader(`{"id":"w-0","site":"demo","type":"pageview"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("collect while starting: %s (Retry-After %q), want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}

	redistest.StartOn(t, port)
	s.waitServing()
	waitFor(ctx, t, "/readyz 200 once Redis is up", func() bool { code, _ := readyzBody(s); return code == http.StatusOK })
	body := []byte(`{"id":"w-1","site":"demo","type":"pageview","url":"https://e.com/"}`)
	if code, _, err := s.post(ctx, body, "test"); err != nil || code != http.StatusAccepted {
		t.Fatalf("collect: %d %v", code, err)
	}
	waitFor(ctx, t, "the event counted", func() bool { n, err := counted(ctx, s, time.Now()); return err == nil && n == 1 })

	// A SIGTERM while waiting for a dependency exits with status 0.
	w := newServerStarting(t, "--redis", fmt.Sprintf("redis://127.0.0.1:%d/0", redistest.FreePort(t)), "--drain-delay", "10s")
	waitFor(ctx, t, "a failed attempt logged", func() bool {
		log, _ := os.ReadFile(w.log.Name())
		return bytes.Contains(log, []byte("start-up: not ready yet, retrying"))
	})
	if err := w.stop(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM while waiting for Redis: exit %v, want status 0", err)
	}
	// No drain is due before serving: no balancer sent traffic to a node
	// whose /readyz never answered 200.
	if log, _ := os.ReadFile(w.log.Name()); bytes.Contains(log, []byte("pulse draining")) {
		t.Errorf("SIGTERM while waiting for Redis drained; the log:\n%s", log)
	}
}

// TestStartWaitsForCluster: pulse started against a Redis Cluster whose
// nodes run but have not formed the cluster yet (no slot map; then, while
// the nodes agree, CLUSTERDOWN) keeps retrying with /readyz naming what it
// waits for, instead of exiting as it did ("load namespace registry: ...
// CLUSTERDOWN The cluster is down"), and serves once the cluster is up.
func TestStartWaitsForCluster(t *testing.T) {
	addrs := redistest.StartClusterNodes(t, 3)
	s := newServerStarting(t, "--redis", "redis-cluster://"+strings.Join(addrs, ","))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	waitFor(ctx, t, "a failed attempt logged", func() bool {
		log, _ := os.ReadFile(s.log.Name())
		return bytes.Contains(log, []byte("start-up: not ready yet, retrying"))
	})
	if code, body := readyzBody(s); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "waiting for ") {
		t.Fatalf("/readyz before the cluster exists: %d %q, want 503 saying what it waits for", code, body)
	}

	redistest.CreateCluster(t, addrs)
	s.waitServing()
	waitFor(ctx, t, "/readyz 200 once the cluster is up", func() bool { code, _ := readyzBody(s); return code == http.StatusOK })
	body := []byte(`{"id":"c-1","site":"demo","type":"pageview","url":"https://e.com/"}`)
	if code, _, err := s.post(ctx, body, "test"); err != nil || code != http.StatusAccepted {
		t.Fatalf("collect: %d %v", code, err)
	}
	waitFor(ctx, t, "the event counted", func() bool { n, err := counted(ctx, s, time.Now()); return err == nil && n == 1 })
}
