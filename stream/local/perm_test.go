package local

import (
	"io/fs"
	"path/filepath"
	"testing"
)

// TestFilesPrivate: the log holds the raw events of every site, so every
// directory it creates is 0700 and every file 0600, segments, journal,
// meta and lock included.
func TestFilesPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "stream")
	l := openT(t, dir, Config{Shards: 2})
	put(t, l, entries("perm", 50))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, Config{Shards: 2}) // a reopen rewrites meta and the journal
	put(t, l, entries("again", 10))
	files := 0
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if e.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s is %v, want %v", p, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 {
		t.Errorf("walked %d files, want the segments, journal and meta", files)
	}
}
