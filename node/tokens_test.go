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
		wantSrc tokenSource
		wantErr string
	}{
		{name: "given", given: "flag-token-0123456789", want: "flag-token-0123456789", wantSrc: tokenGiven},
		{name: "given beats the file", given: "flag-token-0123456789", setup: write("kept-token-0123456789\n"), want: "flag-token-0123456789", wantSrc: tokenGiven},
		{name: "kept", setup: write("kept-token-0123456789\n"), want: "kept-token-0123456789", wantSrc: tokenKept},
		{name: "kept with spaces", setup: write("  kept-token-0123456789 \n\n"), want: "kept-token-0123456789", wantSrc: tokenKept},
		{name: "given too short", given: "flag-secret", wantErr: "--read-token (PULSE_READ_TOKEN): token must be 16 to 512 bytes"},
		{name: "given with a space", given: "flag-secret 0123456789", wantErr: "--read-token (PULSE_READ_TOKEN): token may hold only printable ASCII"},
		{name: "kept too short", setup: write("kept-secret\n"), wantErr: "read-token: token must be 16 to 512 bytes; delete the file"},
		{name: "none: generated", wantSrc: tokenGenerated},
		{name: "empty file: generated", setup: write("\n"), wantSrc: tokenGenerated},
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
			got, src, err := loadOrCreateToken(tt.given, dir, "read-token")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q shows the token", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if src != tt.wantSrc {
				t.Errorf("source %v, want %v", src, tt.wantSrc)
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
				again, src, err := loadOrCreateToken("", dir, "read-token")
				if err != nil || again != got || src != tokenKept {
					t.Errorf("second load %q, %v, %v; want the kept %q", again, src, err, got)
				}
			}
		})
	}
}

func TestLoadOrCreateTokenUnwritable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	if _, _, err := loadOrCreateToken("", dir, "admin-token"); err == nil || !strings.Contains(err.Error(), "write token ") {
		t.Fatalf("error %v, want write token", err)
	}
}

// TestDashboardNotice: the start shows the read token only when it made
// the token up and stderr is a terminal; otherwise it says where the
// token is and never shows it.
func TestDashboardNotice(t *testing.T) {
	const tok, file = "s3cret-token-0123456789", "/var/lib/pulse/read-token"
	tests := []struct {
		name      string
		src       tokenSource
		terminal  bool
		withToken bool
		where     string // in the notice when the token is not shown
	}{
		{name: "generated, terminal", src: tokenGenerated, terminal: true, withToken: true},
		{name: "generated, not a terminal", src: tokenGenerated, where: "in " + file},
		{name: "kept, terminal", src: tokenKept, terminal: true, where: "in " + file},
		{name: "kept, not a terminal", src: tokenKept, where: "in " + file},
		{name: "configured, terminal", src: tokenGiven, terminal: true, where: "the read token you configured"},
		{name: "configured, not a terminal", src: tokenGiven, where: "the read token you configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dashboardNotice("http://localhost:8080/", tok, tt.src, file, tt.terminal)
			if !strings.Contains(got, "http://localhost:8080/demo/") {
				t.Errorf("notice %q lacks the demo page", got)
			}
			if tt.withToken {
				if !strings.Contains(got, "Pulse dashboard: http://localhost:8080/?token="+tok+"\n") {
					t.Errorf("notice %q lacks the URL with the token", got)
				}
				return
			}
			if strings.Contains(got, tok) {
				t.Errorf("notice %q shows the token", got)
			}
			if !strings.Contains(got, "Pulse dashboard: http://localhost:8080/\n") || !strings.Contains(got, tt.where) {
				t.Errorf("notice %q, want the URL without the token and %q", got, tt.where)
			}
		})
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
