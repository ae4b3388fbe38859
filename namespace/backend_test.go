package namespace

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestFileBackendPrivate: the registry file and the directory Save
// creates for it are the owner's only.
func TestFileBackendPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "namespaces.json")
	b := NewFileBackend(path)
	for range 2 { // the second Save replaces the file
		if err := b.Save(context.Background(), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s is %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
}
