package node

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrivateDataDir: a new data dir is created 0700; one an older Pulse
// created 0755 is tightened, and the log says so; a private one is left
// alone without a word.
func TestPrivateDataDir(t *testing.T) {
	for _, tc := range []struct {
		name    string
		before  os.FileMode // 0: absent
		warning bool
	}{
		{"absent", 0, false},
		{"open to others", 0o755, true},
		{"group readable", 0o750, true},
		{"already private", 0o700, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if tc.before != 0 {
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tc.before); err != nil {
					t.Fatal(err)
				}
			}
			var logged bytes.Buffer
			if err := privateDataDir(dir, slog.New(slog.NewTextHandler(&logged, nil))); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("data dir is %v, want -rwx------", fi.Mode().Perm())
			}
			if got := strings.Contains(logged.String(), "tightened"); got != tc.warning {
				t.Errorf("logged %q; want a warning: %v", logged.String(), tc.warning)
			}
		})
	}
}
