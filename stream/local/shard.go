package local

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
)

// shard is one shard: its segments, its tip and the log writer's state
// for it.
//
// Lock order: shard.mu, then segment.fileMu. Nothing holds shard.mu while
// doing I/O, so readers never wait on the writer's disk and the writer only
// waits for readers' few-instruction critical sections.
type shard struct {
	id  string
	idx int // index in Log.shards, as the journal names it
	dir string
	cfg *Config

	mu     sync.RWMutex
	segs   []*segment // by base; the last one is active
	tip    uint64     // last durable seq, 0 when empty
	notify chan struct{}

	waiting atomic.Int32 // readers waiting for a put; for tests

	// Writer-only state.
	active  *segment
	wsize   int64        // bytes written to active, durable or not
	seq     uint64       // last sequence number given out
	snap    uint64       // last sequence number handed to be published
	lastIdx int64        // offset of the newest index entry in active
	buf     []byte       // records encoded, not yet written to active
	pending []indexEntry // index entries of records not yet published
	firstMs int64        // arrival of the first record not yet published
	lastMs  int64        // arrival of the newest record written
	touched bool         // has records in the commit being written
	dirty   bool         // active has writes that are not fdatasync'd
}

// openShard opens the segments of a shard directory, recovering the
// active one's tail.
func openShard(dir, id string, idx int, cfg *Config) (*shard, error) {
	s := &shard{id: id, idx: idx, dir: dir, cfg: cfg, notify: make(chan struct{})}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("make shard dir: %w", err)
	}
	bases, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(bases) == 0 {
		// A new shard: make its directory entry durable too.
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return nil, err
		}
		g, err := createSegment(dir, 1)
		if err != nil {
			return nil, err
		}
		s.segs = []*segment{g}
	}
	for i, base := range bases {
		sealed := i < len(bases)-1
		g, err := s.openSegment(base, sealed)
		if err != nil {
			s.closeFiles()
			return nil, err
		}
		if sealed && g.damaged == nil && g.last+1 != bases[i+1] {
			g.damaged = fmt.Errorf("%w: segment %s ends at %d but the next starts at %d", ErrCorrupt, g.path, g.last, bases[i+1])
		}
		if g.damaged != nil {
			cfg.Logger.Error("damaged segment; reads reaching it will fail", slog.String("shard", id), slog.Any("err", g.damaged))
		}
		s.segs = append(s.segs, g)
	}
	s.active = s.segs[len(s.segs)-1]
	s.wsize = s.active.size
	s.tip = s.active.last
	s.seq = s.tip
	s.snap = s.tip
	s.lastIdx = s.active.lastIndexed
	return s, nil
}

func createSegment(dir string, base uint64) (*segment, error) {
	path := segmentPath(dir, base)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return &segment{base: base, path: path, f: f, last: base - 1, lastIndexed: -indexEvery}, nil
}

// openSegment opens and scans one segment file. The active one is cut at
// its first bad record (a torn tail); a sealed one is marked damaged.
func (s *shard) openSegment(base uint64, sealed bool) (*segment, error) {
	path := segmentPath(s.dir, base)
	flag := os.O_RDWR
	if sealed {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment: %w", err)
	}
	g := &segment{base: base, path: path, f: f}
	good, scanErr := g.scan()
	if scanErr != nil && !errors.Is(scanErr, ErrCorrupt) && !errors.Is(scanErr, errShort) {
		f.Close()
		return nil, fmt.Errorf("scan segment: %w", scanErr)
	}
	if scanErr == nil {
		return g, nil
	}
	if sealed {
		if errors.Is(scanErr, errShort) {
			scanErr = fmt.Errorf("%w: %w", ErrCorrupt, scanErr)
		}
		g.damaged = fmt.Errorf("segment %s offset %d: %w", path, good, scanErr)
		return g, nil
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat segment: %w", err)
	}
	s.cfg.Logger.Warn("cutting torn tail", slog.String("shard", s.id), slog.String("segment", path),
		slog.Int64("offset", good), slog.Int64("dropped_bytes", st.Size()-good), slog.Any("cause", scanErr))
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, fmt.Errorf("truncate torn tail of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync %s: %w", path, err)
	}
	return g, nil
}

func (s *shard) closeFiles() {
	for _, g := range s.segs {
		g.close()
	}
}

// view is what a reader needs of a shard at one instant.
type view struct {
	tip    uint64
	oldest uint64 // first seq still retained (tip+1 when none is)
	notify chan struct{}
}

func (s *shard) view() view {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return view{tip: s.tip, oldest: s.segs[0].base, notify: s.notify}
}

// segView is what a reader needs of one segment at one instant.
type segView struct {
	g       *segment
	last    uint64
	size    int64
	index   []indexEntry
	damaged error
	sealed  bool
}

// locate returns the segment holding seq, ok false when seq is older than
// every retained segment.
func (s *shard) locate(seq uint64) (segView, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].base > seq })
	if i == 0 {
		return segView{}, false
	}
	g := s.segs[i-1]
	return segView{g: g, last: g.last, size: g.size, index: g.index, damaged: g.damaged, sealed: i < len(s.segs)}, true
}
