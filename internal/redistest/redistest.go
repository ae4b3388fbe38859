// Package redistest starts a real redis-server for tests, on a free port of
// its own, and stops it when the test ends.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server child process.
type Server struct {
	Addr string
	Dir  string
	cmd  *exec.Cmd
	args []string
}

// Start runs redis-server on a free port with persistence off (extra args are
// appended, e.g. "--appendonly", "yes") and returns it; it is stopped by
// t.Cleanup. The test fails when redis-server is not installed: the test
// script installs it.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	return StartOn(tb, FreePort(tb), extra...)
}

// StartOn is Start on a given port: a test reserves the port (FreePort),
// starts what connects to it, and starts the server later.
func StartOn(tb testing.TB, port int, extra ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server not found in PATH (run ./scripts/test.sh, which installs it): %v", err)
	}
	s := &Server{Dir: tb.TempDir()}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.Dir, "--daemonize", "no", "--logfile", ""}, extra...)
	s.start(tb, bin)
	tb.Cleanup(s.stop)
	return s
}

func (s *Server) start(tb testing.TB, bin string) {
	tb.Helper()
	s.cmd = exec.Command(bin, s.args...)
	// The server's own log goes to a file beside its data, so it never
	// interleaves with test and benchmark output.
	logf, err := os.OpenFile(filepath.Join(s.Dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatalf("redis log: %v", err)
	}
	defer logf.Close()
	s.cmd.Stdout = logf
	s.cmd.Stderr = logf
	if err := s.cmd.Start(); err != nil {
		tb.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	for {
		if err := c.Ping(context.Background()).Err(); err == nil {
			return
		} else if time.Now().After(deadline) {
			tb.Fatalf("redis-server on %s did not answer: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Kill stops the server at once (SIGKILL).
func (s *Server) Kill() { s.stop() }

// Restart starts the server again on the same port and data dir, after Kill.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatal(err)
	}
	s.start(tb, bin)
}

// Client returns a go-redis client for the server, closed by t.Cleanup.
func (s *Server) Client(tb testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// URL returns the server as a redis:// URL.
func (s *Server) URL() string { return fmt.Sprintf("redis://%s/0", s.Addr) }

// FreePort returns a TCP port that was free a moment ago on 127.0.0.1.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
