package local

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/pulsehq/pulse/stream"
)

// putCall is one Put waiting for the writer.
type putCall struct {
	entries []stream.Entry
	shard   []uint16    // shard index of each entry; nil: all in shard 0
	results []PutResult // nil: not wanted (Append)
	state   atomic.Int32
	done    chan struct{} // capacity 1: one answer per queueing
	err     error         // set before the answer
}

// answer wakes the Put of c, which reads c.err (set before) and may reuse
// c at once: the caller does not touch c after answering it. A Put that
// left (its ctx ended) never reads the answer, which done keeps.
func (c *putCall) answer() { c.done <- struct{}{} }

// Call states: a call is written only if the writer moves it from queued
// to taken before the Put that made it withdraws it.
const (
	reqQueued int32 = iota
	reqTaken
	reqWithdrawn
)

const (
	// flushBytes bounds the writer's buffers: past it, what is encoded is
	// written as one journal frame (not yet fsync'd) and the buffers reused.
	flushBytes = 1 << 20
)

// run is the log's writer: it takes every Put waiting, writes their
// records to the journal and to the shards' segments, and hands them to
// the syncer, which fdatasyncs the journal once for everything written
// so far and wakes every caller (group commit). The writer goes on with
// the next Puts while the syncer waits for the disk. It returns when stop
// is closed and the queue is empty; Close stops new Puts from queueing
// first.
func (l *Log) run(stop <-chan struct{}) {
	defer close(l.synq)
	batch := make([]*putCall, 0, 64)
	for {
		select {
		case c := <-l.queue:
			batch = append(batch[:0], c)
		case <-stop:
			for {
				batch = l.drain(batch[:0])
				if len(batch) == 0 {
					return
				}
				l.commit(batch)
			}
		}
		batch = l.drain(batch)
		if len(batch) < coalesceCalls {
			batch = l.coalesce(batch)
		}
		l.commit(batch)
		clear(batch)
	}
}

// coalesceCalls is the group size below which the writer waits for a busy
// syncer before it writes the group.
const coalesceCalls = 16

// coalesce waits, while the syncer is busy with an fdatasync, for it to be
// done, and adds the Puts that came meanwhile. The syncer takes everything
// written by then in its next fdatasync anyway, so a small group that
// waits costs no fdatasync and saves the writes of a group of its own;
// large groups do not wait, so that writing them overlaps the fdatasync.
func (l *Log) coalesce(batch []*putCall) []*putCall {
	select {
	case <-l.syncIdle: // from an earlier round
	default:
	}
	if !l.syncBusy.Load() {
		return batch
	}
	<-l.syncIdle
	return l.drain(batch)
}

// drain adds what is waiting in the queue, up to its capacity so a
// steady stream of Puts cannot keep one commit going forever.
func (l *Log) drain(batch []*putCall) []*putCall {
	for range cap(l.queue) {
		select {
		case c := <-l.queue:
			batch = append(batch, c)
		default:
			return batch
		}
	}
	return batch
}

// commit writes the taken calls of batch and hands them to the syncer.
func (l *Log) commit(batch []*putCall) {
	var taken []*putCall
	for _, c := range batch {
		if c.state.CompareAndSwap(reqQueued, reqTaken) {
			taken = append(taken, c)
		}
	}
	if len(taken) == 0 {
		return
	}
	err := l.failure()
	var pubs []pubShard
	if err == nil {
		if pubs, err = l.write(taken); err != nil {
			err = l.fail(err)
		}
	}
	if err != nil {
		for _, c := range taken {
			c.err = err
			c.answer()
		}
		return
	}
	l.inflight.Add(1)
	l.synq <- &written{calls: taken, pubs: pubs, j: l.j}
}

// written is a commit whose records are written, not yet durable.
type written struct {
	calls []*putCall
	pubs  []pubShard
	j     *journal // the journal file its frames are in
}

// syncLoop is the syncer: it takes every commit the writer has written,
// fdatasyncs the journal once for all of them (an fdatasync covers every
// write made before it), publishes their records and wakes their callers.
func (l *Log) syncLoop(in <-chan *written) {
	var ws []*written
	for w := range in {
		ws = append(ws[:0], w)
	more:
		for {
			select {
			case w, ok := <-in:
				if !ok {
					break more
				}
				ws = append(ws, w)
			default:
				break more
			}
		}
		l.syncBusy.Store(true)
		err := l.failure()
		if err == nil {
			// The writer waits for the syncer before it changes journal
			// files, so every commit here is in the same one.
			if err = ws[len(ws)-1].j.sync(); err != nil {
				err = l.fail(err)
			} else {
				l.commits.Add(1)
			}
		}
		for _, w := range ws {
			if err == nil {
				for _, p := range w.pubs {
					p.apply()
				}
			}
			for _, c := range w.calls {
				c.err = err
				c.answer()
			}
			l.inflight.Done()
		}
		clear(ws)
		l.syncBusy.Store(false)
		select {
		case l.syncIdle <- struct{}{}:
		default:
		}
	}
}

// fail makes err the log's failure, unless it has one, and returns it.
func (l *Log) fail(err error) error {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	if l.failed == nil {
		l.failed = fmt.Errorf("log failed, reopen it: %w", err)
		l.cfg.Logger.Error("stream write failed; refusing puts until reopened", "err", err)
	}
	return l.failed
}

func (l *Log) failure() error {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	return l.failed
}

// write encodes the records of the taken calls into their shards'
// buffers, in call order, and writes them in frames, and returns what to
// publish once they are durable.
func (l *Log) write(taken []*putCall) ([]pubShard, error) {
	now := l.cfg.Now().UnixMilli()
	pending := 0
	for _, c := range taken {
		for i, e := range c.entries {
			s := l.shards[0]
			if c.shard != nil {
				s = l.shards[c.shard[i]]
			}
			n := recordSize(e.Key, e.Data)
			if s.wsize+int64(len(s.buf)+n) > s.cfg.SegmentBytes && s.wsize+int64(len(s.buf)) > 0 {
				if err := l.roll(s); err != nil {
					return nil, err
				}
			}
			if !s.touched {
				s.touched = true
				l.touched = append(l.touched, s)
			}
			s.seq++
			off := s.wsize + int64(len(s.buf))
			s.addPending(off)
			if s.firstMs == 0 {
				s.firstMs = now
			}
			s.lastMs = now
			s.buf = appendRecord(s.buf, s.seq, now, e.Key, e.Data)
			if c.results != nil {
				c.results[i] = PutResult{Shard: s.id, Seq: strconv.FormatUint(s.seq, 10)}
			}
			if pending += n; pending >= flushBytes {
				if err := l.flush(); err != nil {
					return nil, err
				}
				pending = 0
			}
		}
	}
	if err := l.flush(); err != nil {
		return nil, err
	}
	pubs := make([]pubShard, 0, len(l.touched))
	for _, s := range l.touched {
		if p, ok := s.snapshot(); ok {
			pubs = append(pubs, p)
		}
		s.touched = false
	}
	clear(l.touched)
	l.touched = l.touched[:0]
	return pubs, nil
}

// flush writes what the touched shards have buffered: one journal frame
// holding all of it, then each shard's part to its segment, none of it
// fsync'd yet. When the frame does not fit in the journal, the journal
// moves to its next generation first (see checkpoint).
func (l *Log) flush() error {
	frame := appendFrameHeader(l.frame[:0])
	for _, s := range l.touched {
		if len(s.buf) > 0 {
			frame = appendChunk(frame, s.idx, s.buf)
		}
	}
	l.frame = frame
	if len(frame) == frameHeaderSize {
		return nil
	}
	finishFrame(frame, l.j.gen)
	if l.j.full(len(frame)) {
		if err := l.checkpoint(); err != nil {
			return err
		}
		finishFrame(frame, l.j.gen)
	}
	if err := l.j.write(frame); err != nil {
		return err
	}
	for _, s := range l.touched {
		if err := s.writeBuf(); err != nil {
			return err
		}
	}
	return nil
}

// checkpoint switches the journal to its next generation, in the spare
// file when there is one, and fdatasyncs the segments in the background:
// the old journal file holds what the segments may not yet have on disk,
// so it is kept (and replayed by Open after a crash) until that sync is
// done, and then becomes the spare. The writer goes on meanwhile; it waits
// only when the journal fills again before the sync is done.
func (l *Log) checkpoint() error {
	l.inflight.Wait() // the syncer is done with the current journal file
	if err := l.awaitSync(); err != nil {
		return err
	}
	var files []*segment
	for _, s := range l.shards {
		if s.dirty {
			files = append(files, s.active)
			s.dirty = false
		}
	}
	old := l.j
	// The commit being written may have frames in the old file already;
	// its callers are answered after the syncer's fdatasync of the new
	// one, which does not cover them, nor does the background sync of
	// the segments have to be done by then. So the old file is made
	// durable here, and Open replays it until the segments are synced.
	if err := old.sync(); err != nil {
		return err
	}
	var err error
	if l.spare != nil {
		l.j, err = l.spare, l.spare.reuse(old.gen+1)
		l.spare = nil
	} else {
		l.j, err = createJournal(l.dir, old.gen+1, l.cfg.JournalBytes)
	}
	if err != nil {
		l.j = old
		return err
	}
	done := make(chan error, 1)
	l.syncing, l.syncDone = old, done
	go func() { done <- syncSegments(files) }()
	return nil
}

// awaitSync waits for the background sync of the segments, if one is
// running, and makes its journal file the spare.
func (l *Log) awaitSync() error {
	if l.syncDone == nil {
		return nil
	}
	err := <-l.syncDone
	l.syncDone = nil
	if err != nil {
		return err
	}
	l.spare, l.syncing = l.syncing, nil
	return nil
}

// syncSegments fdatasyncs segments. One that is closed was deleted by
// retention, which takes only sealed segments, and those were fdatasync'd
// when they were sealed.
func syncSegments(files []*segment) error {
	for _, g := range files {
		g.fileMu.RLock()
		var err error
		if !g.closed {
			err = datasync(g.f)
		}
		g.fileMu.RUnlock()
		if err != nil {
			return fmt.Errorf("sync %s: %w", g.path, err)
		}
	}
	return nil
}

// syncAll makes every record written durable in its segment, waiting for a
// background sync first; after it no journal frame is needed.
func (l *Log) syncAll() error {
	if err := l.awaitSync(); err != nil {
		return err
	}
	for _, s := range l.shards {
		if err := s.syncActive(); err != nil {
			return err
		}
	}
	return nil
}

// addPending adds an index entry for the record at off when it is far
// enough from the previous one.
func (s *shard) addPending(off int64) {
	if off-s.lastIdx >= indexEvery {
		s.pending = append(s.pending, indexEntry{seq: s.seq, off: off})
		s.lastIdx = off
	}
}

// writeBuf writes the shard's buffer at the end of its active segment.
func (s *shard) writeBuf() error {
	if len(s.buf) == 0 {
		return nil
	}
	if _, err := s.active.f.WriteAt(s.buf, s.wsize); err != nil {
		return fmt.Errorf("write %s: %w", s.active.path, err)
	}
	s.wsize += int64(len(s.buf))
	s.buf = s.buf[:0]
	s.dirty = true
	return nil
}

// syncActive fdatasyncs the active segment when it has writes since the
// last sync.
func (s *shard) syncActive() error {
	if !s.dirty {
		return nil
	}
	if err := datasync(s.active.f); err != nil {
		return fmt.Errorf("sync %s: %w", s.active.path, err)
	}
	s.dirty = false
	return nil
}

// pubShard is what a commit publishes of one shard.
type pubShard struct {
	s               *shard
	g               *segment
	seq             uint64
	size            int64
	index           []indexEntry
	firstMs, lastMs int64
}

// snapshot takes what the writer has written to the shard since the last
// snapshot, to publish once it is durable; ok is false when that is
// nothing.
func (s *shard) snapshot() (pubShard, bool) {
	if s.seq == s.snap {
		return pubShard{}, false
	}
	p := pubShard{s: s, g: s.active, seq: s.seq, size: s.wsize, index: s.pending, firstMs: s.firstMs, lastMs: s.lastMs}
	s.snap = s.seq
	s.pending = nil
	s.firstMs = 0
	return p, true
}

// apply makes the records of a snapshot visible to readers; the caller
// made them durable.
func (p pubShard) apply() {
	s, g := p.s, p.g
	s.mu.Lock()
	g.index = append(g.index, p.index...)
	if len(p.index) > 0 {
		g.lastIndexed = p.index[len(p.index)-1].off
	}
	if g.firstMs == 0 {
		g.firstMs = p.firstMs
	}
	g.last = p.seq
	g.lastMs = p.lastMs
	g.size = p.size
	s.tip = p.seq
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
}

// publish makes what the writer wrote to the shard visible now; the
// caller made it durable and no commit is waiting for the syncer.
func (s *shard) publish() {
	if p, ok := s.snapshot(); ok {
		p.apply()
	}
}

// roll seals the active segment and starts a new one whose first record
// is the next sequence number. The sealed segment is written and
// fdatasync'd first, so it is durable without the journal, and its
// records are published: Open treats every segment but the last as
// complete. It fdatasyncs even when the writer has no unsynced write, as a
// background checkpoint may still be syncing it, and it waits for the
// syncer first so that records are published in order.
//
// Segments are not preallocated: the journal, not the segments, is
// fsync'd on each commit.
func (l *Log) roll(s *shard) error {
	l.inflight.Wait()
	if err := s.writeBuf(); err != nil {
		return err
	}
	s.dirty = true
	if err := s.syncActive(); err != nil {
		return err
	}
	s.publish()
	g, err := createSegment(s.dir, s.seq+1)
	if err != nil {
		return fmt.Errorf("roll shard %s: %w", s.id, err)
	}
	s.mu.Lock()
	s.segs = append(s.segs, g)
	s.mu.Unlock()
	s.active = g
	s.wsize = 0
	s.lastIdx = g.lastIndexed
	return nil
}
