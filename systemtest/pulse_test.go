// Package systemtest runs the built pulse binary as users and operators do:
// as a subprocess on a free port, fed over HTTP, killed with SIGKILL and
// restarted, and checked against ground truth computed by the test itself.
package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/redistest"
)

var pulseBin string

func TestMain(m *testing.M) {
	// Every test here builds and runs the pulse binary as a subprocess,
	// which is what the -short tier leaves out; skipping here also skips
	// the build.
	flag.Parse()
	if testing.Short() {
		fmt.Println("systemtest: skipped in -short: builds and runs the pulse binary")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "pulse-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pulseBin = filepath.Join(dir, "pulse")
	build := exec.Command("go", "build", "-o", pulseBin, "github.com/pulsehq/pulse/cmd/pulse")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build pulse:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	readToken  = "test-read-token-0123456789"
	adminToken = "test-admin-token-0123456789"
)

// server is one pulse serve subprocess, restartable on the same port and
// data dir.
type server struct {
	t     testing.TB
	addr  string
	data  string
	args  []string
	log   *os.File
	cmd   *exec.Cmd
	mu    sync.Mutex
	start int
}

func newServer(t testing.TB, extra ...string) *server {
	t.Helper()
	s := newServerStarting(t, extra...)
	s.waitServing()
	return s
}

// newServerStarting starts the process and returns once it answers
// /healthz, possibly still waiting for its dependencies.
func newServerStarting(t testing.TB, extra ...string) *server {
	t.Helper()
	s := &server{t: t, data: t.TempDir()}
	s.addr = "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	// Tests name their own sites: any is accepted (within --sites-max and
	// --sites-new-rate) unless extra names the sites.
	s.args = append([]string{"serve", "--addr", s.addr, "--data", s.data,
		"--read-token", readToken, "--admin-token", adminToken, "--log-format", "json", "--sites", "*"}, extra...)
	f, err := os.Create(filepath.Join(t.TempDir(), "pulse.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.log = f
	t.Cleanup(func() {
		s.stop(syscall.SIGKILL)
		if t.Failed() {
			b, _ := os.ReadFile(f.Name())
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("pulse log (tail):\n%s", b)
		}
		f.Close()
	})
	s.launch()
	return s
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

// run starts the process and waits until it serves its routes.
func (s *server) run() {
	s.t.Helper()
	s.launch()
	s.waitServing()
}

// waitServing waits until the process finished its start-up: /healthz
// answers from the start, the other routes once the dependencies are up.
func (s *server) waitServing() {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.url("/v1/openapi.yaml"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("pulse on %s did not finish its start-up", s.addr)
}

// launch starts the process and waits until it answers /healthz.
func (s *server) launch() {
	s.t.Helper()
	s.mu.Lock()
	cmd := exec.Command(pulseBin, s.args...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		s.t.Fatalf("start pulse: %v", err)
	}
	s.cmd = cmd
	s.start++
	s.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.url("/healthz"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("pulse on %s did not become healthy", s.addr)
}

// stop sends sig and waits for the process to exit; it returns how it
// exited (nil: status 0).
func (s *server) stop(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(sig)
	err := s.cmd.Wait()
	s.cmd = nil
	return err
}

// signal sends sig to the running process without waiting for it
// (SIGSTOP and SIGCONT pause and resume it).
func (s *server) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		t.Fatalf("signal %v: the server is not running", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// get fetches path with the read token and decodes JSON into v.
func (s *server) get(ctx context.Context, path string, q url.Values, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url(path)+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+readToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s?%s: %s: %s", path, q.Encode(), resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

// collectResult is the 202/400 answer of /v1/collect.
type collectResult struct {
	Accepted int `json:"accepted"`
	Rejected []struct {
		Index int    `json:"index"`
		Error string `json:"error"`
	} `json:"rejected"`
}

// post sends body to /v1/collect until it gets an answer that is not a
// transport error or a 503, so a request lost to a kill is resent, as a
// tracker does. It returns the final status and result.
func (s *server) post(ctx context.Context, body []byte, ua string) (int, collectResult, error) {
	return s.postFrom(ctx, body, ua, "")
}

// postFrom is post from client, named in X-Forwarded-For for a server
// that trusts the loopback as its proxy (none when client is "").
func (s *server) postFrom(ctx context.Context, body []byte, ua, client string) (int, collectResult, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url("/v1/collect"), bytes.NewReader(body))
		if err != nil {
			return 0, collectResult{}, err
		}
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("User-Agent", ua)
		if client != "" {
			req.Header.Set("X-Forwarded-For", client)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return 0, collectResult{}, ctx.Err()
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		var r collectResult
		if err := json.Unmarshal(b, &r); err != nil {
			// A process killed mid-answer can leave a torn body: resend.
			continue
		}
		return resp.StatusCode, r, nil
	}
}
