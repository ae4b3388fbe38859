package systemtest

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestOperationsMetrics keeps docs/operations.md honest: every metric it
// names is exported on /metrics by an all-roles server after some traffic,
// or, for those only a Kinesis node or an untouched path exports, registered
// under that name in the code.
func TestOperationsMetrics(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile("`((?:pulse|process|go)_[a-z_]*[a-z])[`{]").FindAllStringSubmatch(string(doc), -1) {
		names[m[1]] = true
	}
	if len(names) < 20 {
		t.Fatalf("docs/operations.md names only %d metrics", len(names))
	}

	s := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := []byte(`{"id":"ops-1","site":"demo","type":"pageview","url":"https://e.com/"}` + "\n" + `{"id":"ops-2","type":"pageview"}`)
	if code, _, err := s.post(ctx, body, "test"); err != nil || code != 202 {
		t.Fatalf("collect: %d %v", code, err)
	}
	waitFor(ctx, t, "the event aggregated", func() bool { n, err := counted(ctx, s, time.Now()); return err == nil && n == 1 })
	resp, err := http.Get(s.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	exposed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	var inCode []string
	for n := range names {
		if strings.Contains(string(exposed), "# HELP "+n+" ") {
			continue
		}
		// Registered under this exact name somewhere in the code?
		out, _ := exec.Command("grep", "-rlF", "--include=*.go", "--exclude=*_test.go", `"`+n+`"`, root).Output()
		if len(out) == 0 {
			t.Errorf("docs/operations.md names %s, which no code registers", n)
			continue
		}
		inCode = append(inCode, n)
	}
	t.Logf("%d metrics documented; not exported by an all-roles embedded server after one event, but registered in code: %v", len(names), inCode)
}
