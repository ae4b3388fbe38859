package local

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

const (
	segmentExt = ".seg"
	// indexEvery is the spacing of the sparse index in bytes: a read scans
	// at most this much (plus one record) before its first record, and the
	// index costs 16 bytes per 8 KiB of log (20 MiB for 10 GiB).
	indexEvery = 8 << 10
)

// indexEntry says that the record seq starts at byte off of its segment.
type indexEntry struct {
	seq uint64
	off int64
}

// segment is one file of a shard. The fields below fileMu are published by
// the shard's writer under shard.mu and read under it; the writer also
// reads them without the lock, being their only writer.
type segment struct {
	base uint64 // first sequence number, the file's name
	path string

	// fileMu guards f against being closed (by retention or Close) while a
	// reader is inside ReadAt; readers hold it shared for one ReadAt.
	fileMu sync.RWMutex
	f      *os.File
	closed bool

	last    uint64 // last durable seq; base-1 when empty
	size    int64  // durable bytes
	firstMs int64  // arrival of the first record, 0 when empty
	lastMs  int64  // arrival of the newest record, 0 when empty
	index   []indexEntry
	// damaged is set on a sealed segment that has records after last it
	// could not read: the offset and cause of the first bad one.
	damaged     error
	lastIndexed int64 // offset of the last index entry, -indexEvery when none
}

func segmentName(base uint64) string {
	return fmt.Sprintf("%020d%s", base, segmentExt)
}

// listSegments returns the bases of the segment files in dir, sorted.
func listSegments(dir string) ([]uint64, error) {
	return listNumbered(dir, "segments", "", segmentExt)
}

// listNumbered returns the numbers N of the files prefix+N+ext in dir,
// sorted; what names them in errors. Any other file with the suffix, or N
// 0, is an error: the directory is not what this package wrote.
func listNumbered(dir, what, prefix, ext string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	var ns []uint64
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ext) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, prefix), ext), 10, 64)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("list %s: unexpected file %s in %s", what, name, dir)
		}
		ns = append(ns, n)
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i] < ns[j] })
	return ns, nil
}

// addIndex records where seq starts when it is far enough from the
// previous entry.
func (g *segment) addIndex(seq uint64, off int64) {
	if len(g.index) == 0 || off-g.lastIndexed >= indexEvery {
		g.index = append(g.index, indexEntry{seq: seq, off: off})
		g.lastIndexed = off
	}
}

// lookup returns the offset of the indexed record closest before seq.
func lookup(index []indexEntry, seq uint64) (uint64, int64) {
	i := sort.Search(len(index), func(i int) bool { return index[i].seq > seq })
	if i == 0 {
		return 0, 0
	}
	return index[i-1].seq, index[i-1].off
}

// scan reads the segment from the start, checking every record and
// building the index. It stops at the first record that is torn or fails
// its checks and returns the offset where the good records end and, if it
// stopped early, why.
func (g *segment) scan() (int64, error) {
	if _, err := g.f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("seek %s: %w", g.path, err)
	}
	r := bufio.NewReaderSize(g.f, 1<<20)
	g.last = g.base - 1
	g.lastIndexed = -indexEvery
	var off int64
	buf := make([]byte, 0, 64<<10)
	for {
		hdr, err := r.Peek(headerSize)
		if len(hdr) == 0 && errors.Is(err, io.EOF) {
			return off, nil
		}
		n, err := recordLen(hdr)
		if err != nil {
			return off, err
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return off, errShort
			}
			return off, fmt.Errorf("read %s: %w", g.path, err)
		}
		rec, _, err := decodeRecord(buf)
		if err != nil {
			return off, err
		}
		if rec.Seq != g.last+1 {
			return off, fmt.Errorf("%w: sequence %d where %d was due", ErrCorrupt, rec.Seq, g.last+1)
		}
		g.addIndex(rec.Seq, off)
		g.last = rec.Seq
		if g.firstMs == 0 {
			g.firstMs = rec.ArrivalMs
		}
		g.lastMs = rec.ArrivalMs
		off += int64(n)
		g.size = off
	}
}

// readAt reads from the file unless retention or Close closed it.
func (g *segment) readAt(p []byte, off int64) (int, error) {
	g.fileMu.RLock()
	defer g.fileMu.RUnlock()
	if g.closed {
		return 0, errSegmentGone
	}
	return g.f.ReadAt(p, off)
}

// close closes the file once no reader is inside it.
func (g *segment) close() error {
	g.fileMu.Lock()
	defer g.fileMu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return g.f.Close()
}

var errSegmentGone = errors.New("local: segment deleted")

// syncDir fsyncs a directory so that entries made or removed in it last.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

func segmentPath(dir string, base uint64) string {
	return filepath.Join(dir, segmentName(base))
}
