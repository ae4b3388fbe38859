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
	shard   []uint16 // shard index of each entry
	results []PutResult
	state   atomic.Int32
	done    chan struct{}
	err     error // set before done is closed
}

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
// records to the journal and to the shards' segments, fdatasyncs the
// journal once and wakes every caller (group commit). It returns when
// stop is closed and the queue is empty; Close stops new Puts from
// queueing first.
func (l *Log) run(stop <-chan struct{}) {
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
		l.commit(batch)
		clear(batch)
	}
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

// commit writes the taken calls of batch, makes them durable, publishes
// the new records to readers and wakes the callers.
func (l *Log) commit(batch []*putCall) {
	taken := batch[:0]
	for _, c := range batch {
		if c.state.CompareAndSwap(reqQueued, reqTaken) {
			taken = append(taken, c)
		}
	}
	if len(taken) == 0 {
		return
	}
	err := l.failed
	if err == nil {
		err = l.write(taken)
		if err != nil {
			l.failed = fmt.Errorf("log failed, reopen it: %w", err)
			l.cfg.Logger.Error("stream write failed; refusing puts until reopened", "err", err)
			err = l.failed
		}
	}
	for _, c := range taken {
		c.err = err
		close(c.done)
	}
}

// write encodes the records of the taken calls into their shards'
// buffers, in call order, writes them in frames and fsyncs the journal.
func (l *Log) write(taken []*putCall) error {
	now := l.cfg.Clock().UnixMilli()
	pending := 0
	for _, c := range taken {
		for i, e := range c.entries {
			s := l.shards[c.shard[i]]
			n := recordSize(e.Key, e.Data)
			if s.wsize+int64(len(s.buf)+n) > s.cfg.SegmentBytes && s.wsize+int64(len(s.buf)) > 0 {
				if err := s.roll(); err != nil {
					return err
				}
			}
			if !s.touched {
				s.touched = true
				l.touched = append(l.touched, s)
			}
			s.seq++
			off := s.wsize + int64(len(s.buf))
			if off-s.lastPendingIndexed() >= indexEvery {
				s.pending = append(s.pending, indexEntry{seq: s.seq, off: off})
			}
			if s.firstMs == 0 {
				s.firstMs = now
			}
			s.lastMs = now
			s.buf = appendRecord(s.buf, s.seq, now, e.Key, e.Data)
			c.results[i] = PutResult{Shard: s.id, Seq: strconv.FormatUint(s.seq, 10)}
			if pending += n; pending >= flushBytes {
				if err := l.flush(); err != nil {
					return err
				}
				pending = 0
			}
		}
	}
	if err := l.flush(); err != nil {
		return err
	}
	if err := l.j.sync(); err != nil {
		return err
	}
	l.commits.Add(1)
	for _, s := range l.touched {
		s.publish()
		s.touched = false
	}
	clear(l.touched)
	l.touched = l.touched[:0]
	return nil
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

func (s *shard) lastPendingIndexed() int64 {
	if len(s.pending) > 0 {
		return s.pending[len(s.pending)-1].off
	}
	return s.active.lastIndexed
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

// publish makes the records written up to s.seq visible to readers; the
// caller made them durable.
func (s *shard) publish() {
	if s.seq == s.active.last {
		return
	}
	s.mu.Lock()
	g := s.active
	g.index = append(g.index, s.pending...)
	if len(s.pending) > 0 {
		g.lastIndexed = s.pending[len(s.pending)-1].off
	}
	if g.firstMs == 0 {
		g.firstMs = s.firstMs
	}
	g.last = s.seq
	g.lastMs = s.lastMs
	g.size = s.wsize
	s.tip = s.seq
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
	s.pending = s.pending[:0]
	s.firstMs = 0
}

// roll seals the active segment and starts a new one whose first record
// is the next sequence number. The sealed segment is written and
// fdatasync'd first, so it is durable without the journal, and its
// records are published: Open treats every segment but the last as
// complete. It fdatasyncs even when the writer has no unsynced write, as a
// background checkpoint may still be syncing it.
//
// Segments are not preallocated: the journal, not the segments, is
// fsync'd on each commit.
func (s *shard) roll() error {
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
	return nil
}
