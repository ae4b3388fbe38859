package local

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/pulsehq/pulse/stream"
)

// putCall is one Put waiting for its shards.
type putCall struct {
	pending atomic.Int32 // shards not yet done
	done    chan struct{}
	results []PutResult

	errMu sync.Mutex
	err   error
}

func (c *putCall) finish(err error) {
	if err != nil {
		c.errMu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.errMu.Unlock()
	}
	if c.pending.Add(-1) == 0 {
		close(c.done)
	}
}

// Request states: a request is written only if the writer moves it from
// queued to taken before the Put that made it withdraws it.
const (
	reqQueued int32 = iota
	reqTaken
	reqWithdrawn
)

// putReq is the part of one Put that goes to one shard.
type putReq struct {
	call    *putCall
	entries []stream.Entry
	idx     []int // indexes into entries for this shard
	state   atomic.Int32
}

const (
	// flushBytes bounds the writer's buffer: past it, what is encoded is
	// written (not yet fsync'd) and the buffer reused.
	flushBytes = 1 << 20
)

// run is the shard's writer: it takes everything waiting, writes it,
// fsyncs once and wakes every caller. It returns when stop is closed and
// the queue is empty; Close stops new Puts from queueing first.
func (s *shard) run(stop <-chan struct{}) {
	batch := make([]*putReq, 0, 64)
	for {
		select {
		case r := <-s.queue:
			batch = append(batch[:0], r)
		case <-stop:
			for {
				batch = s.drain(batch[:0])
				if len(batch) == 0 {
					return
				}
				s.commit(batch)
			}
		}
		batch = s.drain(batch)
		s.commit(batch)
		clear(batch)
	}
}

// drain adds what is waiting in the queue, up to its capacity so a
// steady stream of Puts cannot keep one commit going forever.
func (s *shard) drain(batch []*putReq) []*putReq {
	for range cap(s.queue) {
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit writes the taken requests of batch, fsyncs, publishes the new
// records to readers and wakes the callers.
func (s *shard) commit(batch []*putReq) {
	taken := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(reqQueued, reqTaken) {
			taken = append(taken, r)
		}
	}
	if len(taken) == 0 {
		return
	}
	err := s.failed
	if err == nil {
		err = s.write(taken)
		if err != nil {
			s.failed = fmt.Errorf("shard %s failed, reopen the log: %w", s.id, err)
			s.cfg.Logger.Error("shard write failed; refusing puts until reopened", "shard", s.id, "err", err)
		}
	}
	for _, r := range taken {
		r.call.finish(err)
	}
}

// write encodes, writes and fsyncs the records of the taken requests,
// filling in their results, and publishes them.
func (s *shard) write(taken []*putReq) error {
	now := s.cfg.Clock().UnixMilli()
	seq := s.active.last
	if s.wsize > s.active.size {
		// An earlier failed write can leave bytes past the durable size;
		// s.failed stops us before we get here, this is belt and braces.
		return fmt.Errorf("shard %s: unpublished bytes in active segment", s.id)
	}
	s.buf = s.buf[:0]
	s.pending = s.pending[:0]
	firstMs := int64(0)
	for _, r := range taken {
		for _, i := range r.idx {
			e := r.entries[i]
			n := int64(recordSize(e.Key, e.Data))
			if s.wsize+int64(len(s.buf))+n > s.cfg.SegmentBytes && s.wsize+int64(len(s.buf)) > 0 {
				if err := s.flush(true, seq, now, firstMs); err != nil {
					return err
				}
				if err := s.roll(seq + 1); err != nil {
					return err
				}
				firstMs = 0
			}
			seq++
			off := s.wsize + int64(len(s.buf))
			if off-s.lastPendingIndexed() >= indexEvery {
				s.pending = append(s.pending, indexEntry{seq: seq, off: off})
			}
			if firstMs == 0 {
				firstMs = now
			}
			s.buf = appendRecord(s.buf, seq, now, e.Key, e.Data)
			r.call.results[i] = PutResult{Shard: s.id, Seq: strconv.FormatUint(seq, 10)}
			if len(s.buf) >= flushBytes {
				if err := s.flush(false, seq, now, firstMs); err != nil {
					return err
				}
			}
		}
	}
	return s.flush(true, seq, now, firstMs)
}

func (s *shard) lastPendingIndexed() int64 {
	if len(s.pending) > 0 {
		return s.pending[len(s.pending)-1].off
	}
	return s.active.lastIndexed
}

// flush writes the buffer to the active segment; with sync it also
// fsyncs and publishes everything written since the last publish, up to
// seq.
func (s *shard) flush(sync bool, seq uint64, now, firstMs int64) error {
	if len(s.buf) > 0 {
		if _, err := s.active.f.WriteAt(s.buf, s.wsize); err != nil {
			return fmt.Errorf("write %s: %w", s.active.path, err)
		}
		s.wsize += int64(len(s.buf))
		s.buf = s.buf[:0]
	}
	if !sync || seq == s.active.last {
		return nil
	}
	if err := datasync(s.active.f); err != nil {
		return fmt.Errorf("sync %s: %w", s.active.path, err)
	}
	s.mu.Lock()
	g := s.active
	g.index = append(g.index, s.pending...)
	if len(s.pending) > 0 {
		g.lastIndexed = s.pending[len(s.pending)-1].off
	}
	if g.firstMs == 0 {
		g.firstMs = firstMs
	}
	g.last = seq
	g.lastMs = now
	g.size = s.wsize
	s.tip = seq
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
	s.pending = s.pending[:0]
	return nil
}

// roll seals the active segment (its records already fsync'd by flush)
// and starts a new one whose first record will be base.
//
// Segments are not preallocated: writing zeros ahead so that fsyncs skip
// the journal commit for the size change was measured slower here (four
// shards' fsyncs already share journal commits, and the zeros double the
// bytes written).
func (s *shard) roll(base uint64) error {
	g, err := createSegment(s.dir, base)
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
