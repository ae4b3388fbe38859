package node

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestLoadOrCreateToken: a given token wins and leaves the data dir alone;
// otherwise the kept one is read, or a new one generated and kept (0600),
// so the dashboard URL survives restarts.
func TestLoadOrCreateToken(t *testing.T) {
	generated := regexp.MustCompile(`^[0-9a-f]{48}$`)
	tests := []struct {
		name    string
		given   string
		setup   func(t *testing.T, path string) // prepares DIR/read-token
		want    string                          // "" with wantErr "": a generated token
		wantErr string
	}{
		{name: "given", given: "flag-token", want: "flag-token"},
		{name: "given beats the file", given: "flag-token", setup: write("kept\n"), want: "flag-token"},
		{name: "kept", setup: write("kept-token\n"), want: "kept-token"},
		{name: "kept with spaces", setup: write("  kept-token \n\n"), want: "kept-token"},
		{name: "none: generated"},
		{name: "empty file: generated", setup: write("\n")},
		{name: "unreadable", setup: func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "read token "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "read-token")
			if tt.setup != nil {
				tt.setup(t, path)
			}
			before, _ := os.ReadFile(path)
			got, err := loadOrCreateToken(tt.given, dir, "read-token")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			after, _ := os.ReadFile(path)
			switch {
			case tt.want != "":
				if got != tt.want {
					t.Fatalf("token %q, want %q", got, tt.want)
				}
				if string(after) != string(before) {
					t.Errorf("file changed from %q to %q", before, after)
				}
			default:
				if !generated.MatchString(got) {
					t.Fatalf("generated token %q, want 48 hex digits", got)
				}
				if string(after) != got+"\n" {
					t.Errorf("kept %q, want %q", after, got+"\n")
				}
				if fi, err := os.Stat(path); err != nil {
					t.Error(err)
				} else if fi.Mode().Perm() != 0o600 {
					t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
				}
				again, err := loadOrCreateToken("", dir, "read-token")
				if err != nil || again != got {
					t.Errorf("second load %q, %v; want the kept %q", again, err, got)
				}
			}
		})
	}
}

func TestLoadOrCreateTokenUnwritable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	if _, err := loadOrCreateToken("", dir, "admin-token"); err == nil || !strings.Contains(err.Error(), "write token ") {
		t.Fatalf("error %v, want write token", err)
	}
}

func write(content string) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
