package systemtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/redistest"
)

// TestBadAccessConfig: pulse serve refuses to start on a bad access
// setting, with a message naming the flag, file and line, and never the
// secret.
func TestBadAccessConfig(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		args []string
		msg  string
	}{
		{"token without sites", []string{"--read-tokens", file("t1", "# x\nsecret-tok\n")}, "--read-tokens: " + filepath.Join(dir, "t1") + ":2: want TOKEN=SITES"},
		{"token bad site", []string{"--read-tokens", file("t2", "secret-tok-0123456789=Shop\n")}, `t2:1: site 1 of the list is not a site id`},
		{"token equals --read-token", []string{"--read-tokens", file("t3", readToken+"=shop\n")}, "equals --read-token"},
		{"missing tokens file", []string{"--read-tokens", filepath.Join(dir, "none")}, "--read-tokens: open "},
		{"short write key", []string{"--write-keys", file("k1", "shop=secret\n")}, "--write-keys: " + filepath.Join(dir, "k1") + ":1: key must be 16 to 512 bytes"},
		{"bad allowed site", []string{"--allowed-sites", "demo,Bad!"}, `--allowed-sites: "Bad!" is not a site id`},
		{"bad origin pattern", []string{"--ingest-origins", "[x"}, `--ingest-origins: "[x" is not a valid pattern`},
		{"write keys without origins", []string{"--write-keys", file("k2", "shop=secret-shop-0123456789\nblog=secret-blog-0123456789\nnews=secret-news-0123456789 news.test\n")},
			"--write-keys " + filepath.Join(dir, "k2") + ": no origins for keyed sites blog, shop: "},
		{"write keys, every origin", []string{"--write-keys", file("k3", "shop=secret-shop-0123456789\n"), "--ingest-origins", "*"}, "no origins for keyed sites shop: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := append([]string{"serve", "--addr", "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)), "--data", t.TempDir(),
				"--read-token", readToken, "--admin-token", adminToken}, tc.args...)
			out, err := exec.CommandContext(ctx, pulseBin, args...).CombinedOutput()
			if err == nil {
				t.Fatalf("pulse serve started: %s", out)
			}
			if ctx.Err() != nil {
				t.Fatalf("pulse serve did not exit: %s", out)
			}
			if !strings.Contains(string(out), tc.msg) {
				t.Fatalf("output %s, want %q", out, tc.msg)
			}
			if strings.Contains(string(out), "secret") {
				t.Errorf("output shows a secret: %s", out)
			}
		})
	}
}
