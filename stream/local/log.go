package local

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/pulsehq/pulse/stream"
)

// ErrClosed is returned by calls on a closed Log.
var ErrClosed = errors.New("local: log closed")

// Log is the embedded durable stream. It is safe for concurrent use.
type Log struct {
	cfg    Config
	dir    string
	shards []*shard
	byID   map[string]*shard
	lock   *os.File

	// closeMu orders Close after every Put that is queueing: Puts hold it
	// shared while they queue, Close takes it to set closed.
	closeMu sync.RWMutex
	closed  bool
	closing chan struct{} // closed by Close: wakes waiting readers
	stop    chan struct{} // closed by Close once no Put can queue
	queue   chan *putCall
	// calls are putCalls whose Put was answered, for the next Puts: a
	// call abandoned by a Put whose ctx ended is left to the collector.
	calls  sync.Pool
	synq   chan *written  // from the writer to the syncer
	writer sync.WaitGroup // the writer and the syncer
	// inflight counts commits handed to the syncer and not yet done; the
	// writer waits for none before it changes segment or journal file.
	inflight sync.WaitGroup
	syncBusy atomic.Bool   // the syncer is in an fdatasync
	syncIdle chan struct{} // the syncer finished one (capacity 1)

	// Writer-only state.
	j        *journal
	spare    *journal   // a journal file whose records are all in the segments
	syncing  *journal   // the previous journal, while its segments are synced
	syncDone chan error // the result of that background sync
	touched  []*shard   // shards with records in the commit being written
	frame    []byte
	failMu   sync.Mutex
	failed   error        // guarded by failMu: the writer and the syncer set it
	commits  atomic.Int64 // journal fdatasyncs; read by benchmarks

	retainMu sync.Mutex // one retention pass at a time
}

// PutResult says where one entry was stored.
type PutResult struct{ Shard, Seq string }

type meta struct {
	Version int `json:"version"`
	Shards  int `json:"shards"`
}

const (
	metaFile = "meta.json"
	// metaVersion 2 has the journal; a version 1 directory (segments only,
	// every one fsync'd on each commit) is read as it is and marked 2 on
	// Open, so that a build that does not know the journal refuses it
	// rather than miss records that only the journal holds.
	metaVersion = 2
)

// ShardID names shard i as the log does.
func ShardID(i int) string { return fmt.Sprintf("shard-%06d", i) }

// Open opens the log in dir, making it when it does not exist, and
// recovers it: the active segment of every shard is scanned and its torn
// tail cut, the indexes are rebuilt from the segments, and the records
// that the journal holds beyond a shard's segments are put back and made
// durable there. The Log owns one writer goroutine until Close.
func Open(dir string, cfg Config) (*Log, error) {
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	lock, err := lockDir(filepath.Join(dir, "LOCK"))
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	n, err := loadMeta(dir, cfg.Shards)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	cfg.Shards = n
	l := &Log{cfg: cfg, dir: dir, lock: lock, byID: make(map[string]*shard, n),
		closing: make(chan struct{}), stop: make(chan struct{}), queue: make(chan *putCall, cfg.QueueDepth),
		synq: make(chan *written, 64), syncIdle: make(chan struct{}, 1),
		calls: sync.Pool{New: func() any { return &putCall{done: make(chan struct{}, 1)} }}}
	fail := func(err error) (*Log, error) {
		for _, j := range []*journal{l.j, l.spare} {
			if j != nil {
				j.close()
			}
		}
		for _, s := range l.shards {
			s.closeFiles()
		}
		lock.Close()
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	for i := range n {
		id := ShardID(i)
		s, err := openShard(filepath.Join(dir, id), id, i, &l.cfg)
		if err != nil {
			return fail(fmt.Errorf("shard %s: %w", id, err))
		}
		l.shards = append(l.shards, s)
		l.byID[id] = s
	}
	if err := l.recoverJournal(); err != nil {
		return fail(err)
	}
	l.writer.Add(2)
	go func() {
		defer l.writer.Done()
		l.run(l.stop)
	}()
	go func() {
		defer l.writer.Done()
		l.syncLoop(l.synq)
	}()
	return l, nil
}

// loadMeta reads the shard count recorded in dir, recording want (or the
// default) when there is none yet.
func loadMeta(dir string, want int) (int, error) {
	if want < 0 || want > maxShards {
		return 0, fmt.Errorf("shard count %d out of range 1..%d", want, maxShards)
	}
	path := filepath.Join(dir, metaFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if want == 0 {
			want = defaultShards
		}
		return want, writeMeta(dir, meta{Version: metaVersion, Shards: want})
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", metaFile, err)
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	if m.Version < 1 || m.Version > metaVersion {
		return 0, fmt.Errorf("%s: version %d, this build reads 1 to %d: open it with a newer pulse", path, m.Version, metaVersion)
	}
	if m.Shards < 1 || m.Shards > maxShards {
		return 0, fmt.Errorf("%s: shard count %d out of range", path, m.Shards)
	}
	if want != 0 && want != m.Shards {
		return 0, fmt.Errorf("configured with %d shards but the log was made with %d; the shard count is fixed at creation (use %d, or a new directory)", want, m.Shards, m.Shards)
	}
	if m.Version < metaVersion {
		// Every record of a version 1 log is durable in its segment.
		m.Version = metaVersion
		if err := writeMeta(dir, m); err != nil {
			return 0, err
		}
	}
	return m.Shards, nil
}

// writeMeta writes the meta file atomically: a temp file, fsync'd, renamed
// over, then the directory fsync'd.
func writeMeta(dir string, m meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode meta: %w", err)
	}
	tmp := filepath.Join(dir, metaFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write meta: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync meta: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close meta: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, metaFile)); err != nil {
		return fmt.Errorf("rename meta: %w", err)
	}
	return syncDir(dir)
}

// ShardFor returns the shard a partition key goes to: the 128-bit MD5 of
// the key, as Kinesis hashes partition keys, over even hash ranges (shard
// i holds hashes in [i*2^128/n, (i+1)*2^128/n)).
func (l *Log) ShardFor(key string) string {
	return l.shards[shardIndex(key, len(l.shards))].id
}

func shardIndex(key string, n int) int {
	sum := md5.Sum([]byte(key))
	hi := binary.BigEndian.Uint64(sum[:8])
	lo := binary.BigEndian.Uint64(sum[8:])
	// floor(h*n / 2^128) with h = hi*2^64 + lo, in 64-bit words.
	topHi, topLo := bits.Mul64(hi, uint64(n))
	carryHi, _ := bits.Mul64(lo, uint64(n))
	_, carry := bits.Add64(topLo, carryHi, 0)
	return int(topHi + carry)
}

// Shards lists the shards; they never close nor split.
func (l *Log) Shards(ctx context.Context) ([]stream.Shard, error) {
	out := make([]stream.Shard, len(l.shards))
	for i, s := range l.shards {
		out[i] = stream.Shard{ID: s.id}
	}
	return out, nil
}

// Tip returns the last durable sequence number of a shard, "" when the
// shard has never had a record or does not exist.
func (l *Log) Tip(shard string) string {
	s, ok := l.byID[shard]
	if !ok {
		return ""
	}
	s.mu.RLock()
	tip := s.tip
	s.mu.RUnlock()
	return formatSeq(tip)
}

// Put stores entries, each in the shard its key hashes to, and returns
// where each went, in order, once every one of them is durable. Concurrent
// Puts share one write and one fdatasync. It blocks while the writer's
// queue is full, until ctx is done. On error, some entries may have been
// stored: retry them all.
func (l *Log) Put(ctx context.Context, entries []stream.Entry) ([]PutResult, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	results := make([]PutResult, len(entries))
	if err := l.put(ctx, entries, results); err != nil {
		return nil, err
	}
	return results, nil
}

// Append is Put for a caller that needs no PutResult (ingest): it returns
// nil once every entry is durable, and makes no sequence number strings.
// Once it has returned nil, the log no longer reads entries.
func (l *Log) Append(ctx context.Context, entries []stream.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	return l.put(ctx, entries, nil)
}

// put is Put, filling results when it is not nil.
func (l *Log) put(ctx context.Context, entries []stream.Entry, results []PutResult) error {
	for i, e := range entries {
		if len(e.Key) > maxKeyBytes {
			return fmt.Errorf("put entry %d: key of %d bytes, at most %d", i, len(e.Key), maxKeyBytes)
		}
		if len(e.Data) > maxDataSize {
			return fmt.Errorf("put entry %d: data of %d bytes, at most %d", i, len(e.Data), maxDataSize)
		}
	}
	call := l.calls.Get().(*putCall)
	call.entries, call.results = entries, results
	call.state.Store(reqQueued)
	if n := len(l.shards); n > 1 {
		// Hashing here, on the callers' goroutines, keeps it off the
		// single writer.
		call.shard = slices.Grow(call.shard[:0], len(entries))[:len(entries)]
		for i, e := range entries {
			call.shard[i] = uint16(shardIndex(e.Key, n))
		}
	}

	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case l.queue <- call: // the queue has room: no wait on ctx to set up
	default:
		select {
		case l.queue <- call:
		case <-ctx.Done():
			l.closeMu.RUnlock()
			return fmt.Errorf("put: %w", ctx.Err())
		}
	}
	l.closeMu.RUnlock()
	select {
	case <-call.done:
	case <-ctx.Done():
		if call.state.CompareAndSwap(reqQueued, reqWithdrawn) {
			return fmt.Errorf("put: %w", ctx.Err())
		}
		return fmt.Errorf("put: %w (some entries may have been stored)", ctx.Err())
	}
	err := call.err
	// Answered: neither the writer nor the syncer holds the call any more.
	call.entries, call.results, call.err = nil, nil, nil
	l.calls.Put(call)
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	return nil
}

// Close stops accepting Puts, lets the writer finish what is queued, makes
// every segment durable so the next Open has nothing to put back, wakes
// waiting readers and closes the files. It is safe to call twice.
func (l *Log) Close() error {
	l.closeMu.Lock()
	if l.closed {
		l.closeMu.Unlock()
		return nil
	}
	l.closed = true
	close(l.closing)
	close(l.stop)
	l.closeMu.Unlock()
	l.writer.Wait()
	var errs []error
	if l.failure() != nil {
		_ = l.awaitSync() // the log failed already; Open recovers it
	} else if err := l.syncAll(); err != nil {
		errs = append(errs, fmt.Errorf("close: %w", err))
	} else if err := l.j.reuse(l.j.gen + 1); err != nil {
		// Nothing in the journal was needed any more: the next Open
		// finds no frame of the new generation to read.
		errs = append(errs, fmt.Errorf("close: %w", err))
	}
	for _, j := range []*journal{l.j, l.spare, l.syncing} {
		if j != nil {
			if err := j.close(); err != nil {
				errs = append(errs, fmt.Errorf("close journal: %w", err))
			}
		}
	}
	for _, s := range l.shards {
		s.mu.RLock()
		segs := s.segs
		s.mu.RUnlock()
		for _, g := range segs {
			if err := g.close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", g.path, err))
			}
		}
	}
	if err := l.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("release lock: %w", err))
	}
	return errors.Join(errs...)
}
