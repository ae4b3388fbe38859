package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// DirStore is an ObjectStore on a local directory, with the same key layout
// as S3. Writes are crash-safe: an object appears whole or not at all, and a
// key is created at most once. Safe for concurrent use, also by several
// processes sharing the directory.
type DirStore struct {
	dir string
}

// NewDir returns a store rooted at dir; dir is created on first write.
func NewDir(dir string) *DirStore { return &DirStore{dir: filepath.Clean(dir)} }

// tmpPrefix marks files being written; List skips them. A crash may leave
// one behind; it is never visible as an object.
const tmpPrefix = ".tmp-"

func (d *DirStore) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || path.Clean(key) != key || strings.HasPrefix(key, "../") || key == ".." {
		return "", fmt.Errorf("%w %q: want a clean relative key", ErrBadKey, key)
	}
	for _, part := range strings.Split(key, "/") {
		if strings.HasPrefix(part, ".") {
			return "", fmt.Errorf("%w %q: parts must not start with '.'", ErrBadKey, key)
		}
	}
	return filepath.Join(d.dir, filepath.FromSlash(key)), nil
}

// PutIfAbsent writes body to a temp file in the target directory, fsyncs it
// and hard-links it to the final name: link(2) fails with EEXIST instead of
// replacing, so "absent" is decided atomically by the file system, and the
// final name only ever points at complete, synced content. The directory is
// fsynced so the new entry survives a power loss. meta is not stored: the
// Parquet footer already carries the record count and seq range.
func (d *DirStore) PutIfAbsent(ctx context.Context, key string, body []byte, contentType string, meta map[string]string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	final, err := d.path(key)
	if err != nil {
		return false, err
	}
	if _, err := os.Lstat(final); err == nil {
		return false, nil
	}
	dir := filepath.Dir(final)
	if err := mkdirAllSync(dir); err != nil {
		return false, fmt.Errorf("put %s: %w", key, err)
	}
	f, err := os.CreateTemp(dir, tmpPrefix)
	if err != nil {
		return false, fmt.Errorf("put %s: %w", key, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // the link, if made, keeps the content
	if _, err := f.Write(body); err != nil {
		f.Close()
		return false, fmt.Errorf("put %s: write: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return false, fmt.Errorf("put %s: fsync: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("put %s: close: %w", key, err)
	}
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("put %s: link: %w", key, err)
	}
	if err := os.Remove(tmp); err != nil {
		return false, fmt.Errorf("put %s: remove temp: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return false, fmt.Errorf("put %s: %w", key, err)
	}
	return true, nil
}

// Get opens the object's file. The *os.File it returns is also an
// io.ReaderAt, which Read uses to avoid copying the object into memory.
func (d *DirStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return f, nil
}

// List walks the directory under the prefix's directory part and keeps the
// keys that start with prefix.
func (d *DirStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	base := d.dir
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		base = filepath.Join(d.dir, filepath.FromSlash(prefix[:i]))
	}
	var out []ObjectInfo
	err := filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), ".") && p != base {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() || !e.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(d.dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		out = append(out, ObjectInfo{Key: key, Size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s/%s: %w", d.dir, prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// mkdirAllSync creates dir and its missing parents, fsyncing each parent
// that gained an entry, so a synced object is never lost with its directory.
func mkdirAllSync(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return fmt.Errorf("mkdir: %w", err)
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for fsync: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}
