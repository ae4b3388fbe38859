// Package rowdir keeps the Stats API's fact rows (package factrow) of the
// embedded mode in files, one append-only file per (site, hour) of a
// namespace, instead of in the embedded Redis: there a row string lives in
// process memory and every APPEND copies it whole, so a sustained rate
// would cost memory by the gigabyte an hour and copying that grows with
// the string. On disk the rows cost page cache the kernel may drop.
//
// The files are exactly as durable as the embedded Redis: not at all.
// Everything the embedded mode aggregates is rebuilt from the local stream
// at start (internal/embedredis), so a Dir starts empty (Reset) and is
// refilled by the same applies, in the same process that applies to the
// embedded Redis. A crash between the apply script and the file append
// loses both together. An append that fails (a full disk) fails the apply,
// whose redelivery the script then skips: that commit's rows are missing
// until the next start rebuilds them, and the error says so in the log.
package rowdir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pulsehq/pulse/factrow"
)

// Dir is the row files of one namespace: DIR/SITE/HOUR.rows, HOUR the
// hour's start in ms. Safe for concurrent use.
type Dir struct {
	path string
	mu   sync.Mutex // serializes appends to one file against its reads of the length
}

// Open returns the row files under path, creating it (0700, as the rest of
// the data directory).
func Open(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("row files %s: %w", path, err)
	}
	return &Dir{path: path}, nil
}

// Reset removes every row file under path: the embedded mode rebuilds them
// from the stream at start.
func Reset(path string) error {
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("reset row files %s: %w", path, err)
	}
	return nil
}

// file is the path of site's hour. Site ids may be "." or "..", so the
// directory of a site is "s_" and the id.
func (d *Dir) file(site string, hour int64) string {
	return filepath.Join(d.path, "s_"+site, strconv.FormatInt(hour, 10)+".rows")
}

// AppendRows appends rows to site's hour and returns the file's new length.
func (d *Dir) AppendRows(site string, hour int64, rows []byte) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := d.file(site, hour)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(name), 0o700); err == nil {
			f, err = os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("append rows: %w", err)
	}
	if _, err := f.Write(rows); err != nil {
		f.Close()
		return 0, fmt.Errorf("append rows to %s: %w", name, err)
	}
	st, err := f.Stat()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("append rows to %s: %w", name, err)
	}
	return st.Size(), nil
}

// RowLengths returns the length of each of site's hour files, 0 for none.
func (d *Dir) RowLengths(_ context.Context, site string, hours []int64) ([]int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]int64, len(hours))
	for i, h := range hours {
		st, err := os.Stat(d.file(site, h))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("row files of %s: %w", site, err)
		default:
			out[i] = st.Size()
		}
	}
	return out, nil
}

// RowBytes returns bytes [from, to) of site's hour file (fewer when it is
// shorter).
func (d *Dir) RowBytes(_ context.Context, site string, hour, from, to int64) ([]byte, error) {
	if to <= from {
		return nil, nil
	}
	f, err := os.Open(d.file(site, hour))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rows of %s hour %d: %w", site, hour, err)
	}
	defer f.Close()
	b := make([]byte, to-from)
	n, err := f.ReadAt(b, from)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("rows of %s hour %d: %w", site, hour, err)
	}
	return b[:n], nil
}

// Expire removes the files of hours that ended more than keep before now,
// as Redis expires a row string, and the site directories left empty.
func (d *Dir) Expire(now time.Time, keep time.Duration) error {
	d.mu.Lock() // an append may be creating a site directory this removes
	defer d.mu.Unlock()
	limit := now.Add(-keep).UnixMilli() - factrow.HourMs
	sites, err := os.ReadDir(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("expire row files: %w", err)
	}
	for _, s := range sites {
		dir := filepath.Join(d.path, s.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("expire row files: %w", err)
		}
		left := len(files)
		for _, f := range files {
			h, err := strconv.ParseInt(strings.TrimSuffix(f.Name(), ".rows"), 10, 64)
			if err != nil || h > limit {
				continue
			}
			if err := os.Remove(filepath.Join(dir, f.Name())); err != nil {
				return fmt.Errorf("expire row files: %w", err)
			}
			left--
		}
		if left == 0 {
			if err := os.Remove(dir); err != nil {
				return fmt.Errorf("expire row files: %w", err)
			}
		}
	}
	return nil
}
