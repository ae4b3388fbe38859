package systemtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestReadTokenNotLogged: the all-sites read token never reaches the log,
// neither one configured with --read-token (fleet nodes) nor one the start
// generated, since stderr here is a file, not a terminal. The start says
// where the token is instead.
func TestReadTokenNotLogged(t *testing.T) {
	s := newServer(t)
	if err := s.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Log(attackTokenInLog(t, nil, s))

	// The same data dir without --read-token: this start generates one.
	i := slices.Index(s.args, "--read-token")
	s.args = slices.Delete(s.args, i, i+2)
	s.run()
	generated, err := os.ReadFile(filepath.Join(s.data, "read-token"))
	if err != nil {
		t.Fatalf("generated read token: %v", err)
	}
	tok := strings.TrimSpace(string(generated))
	logged := readLog(t, s)
	if len(tok) < 16 || strings.Contains(logged, tok) {
		t.Fatalf("the generated read token %q is in the log:\n%s", tok, logged)
	}
	if want := "in " + filepath.Join(s.data, "read-token"); !strings.Contains(logged, want) {
		t.Fatalf("the log does not say the token is %q:\n%s", want, logged)
	}
	t.Logf("neither the configured nor the generated read token (%d bytes) is in %d bytes of log", len(tok), len(logged))
}

func readLog(t *testing.T, s *server) string {
	t.Helper()
	b, err := os.ReadFile(s.log.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// attackTokenInLog is item 7 of issue 11: a server configured with
// --read-token (as newServer starts it, like a fleet node) has logged
// where to find the token, never the token.
func attackTokenInLog(t *testing.T, _ context.Context, s *server) string {
	logged := readLog(t, s)
	if strings.Contains(logged, readToken) {
		t.Errorf("the configured read token %q is in the log:\n%s", readToken, logged)
	}
	if !strings.Contains(logged, "Pulse dashboard: http://") || !strings.Contains(logged, "the read token you configured") {
		t.Errorf("the log lacks the dashboard notice naming the configured token:\n%s", logged)
	}
	return fmt.Sprintf("the configured read token is not in %d bytes of log", len(logged))
}
