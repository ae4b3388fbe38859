package archiver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/stream"
)

// errEnded stops a session once a closed shard is archived to its end.
var errEnded = errors.New("archiver: shard ended")

// runShard archives one shard until it ended (closed and archived to its
// end) or ctx is done. A failure drops the buffered records and restarts
// from the checkpoint after a backoff: between two checkpoints the writer
// must start empty for the rebuild to cut where the crashed run cut.
func (a *Archiver) runShard(ctx context.Context, shard string) (ended bool) {
	backoff := a.cfg.Backoff
	for {
		progressed, err := a.session(ctx, shard)
		a.w.Drop(shard)
		if errors.Is(err, errEnded) {
			a.log.Info("archive shard ended", "shard", shard)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if progressed {
			backoff = a.cfg.Backoff
		}
		a.log.Warn("archive worker failed, restarting from the checkpoint", "shard", shard, "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// session is one run of a shard from its checkpoint.
type session struct {
	a          *Archiver
	shard      string
	ck         Checkpoint // as last saved
	added      int        // records added since ck.Durable
	progressed bool       // a flush made records durable
}

// session loads the checkpoint and archives until an error, the shard's
// end or ctx is done; then, on ctx done, it flushes what it holds.
func (a *Archiver) session(ctx context.Context, shard string) (progressed bool, err error) {
	ck, err := a.ck.Load(ctx, shard)
	if err != nil {
		if ctx.Err() == nil {
			a.met.errors.WithLabelValues("checkpoint").Inc()
		}
		return false, err
	}
	s := &session{a: a, shard: shard, ck: ck}
	err = s.loop(ctx)
	if ctx.Err() != nil && !errors.Is(err, errEnded) {
		s.stop(ctx)
		return s.progressed, ctx.Err()
	}
	return s.progressed, err
}

func (s *session) loop(ctx context.Context) error {
	a := s.a
	after := s.ck.Durable
	tick := a.cfg.tick()
	next := a.cfg.Now().Add(tick)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// While replaying toward a recorded boundary the flush point is
		// fixed; time decides nothing.
		if now := a.cfg.Now(); !now.Before(next) {
			next = now.Add(tick)
			if s.ck.FlushAt == "" && slices.Contains(a.w.Due(now), s.shard) {
				if err := s.flush(ctx); err != nil {
					return err
				}
			}
		}
		b, err := a.src.Read(ctx, s.shard, after, a.cfg.ReadLimit)
		if err != nil {
			if ctx.Err() == nil {
				a.met.errors.WithLabelValues("read").Inc()
			}
			return fmt.Errorf("read shard %s after %q: %w", s.shard, after, err)
		}
		if b.Trimmed {
			// Stream retention deleted records before they were
			// archived; nothing can bring them back.
			a.met.errors.WithLabelValues("trimmed").Inc()
			a.log.Error("archive: records expired from the stream before they were archived", "shard", s.shard, "after", after)
		}
		for i := range b.Records {
			r := &b.Records[i]
			// A batch shares its memory; keep only the seq.
			seq := strings.Clone(r.Seq)
			if err := s.record(ctx, seq, r); err != nil {
				return err
			}
			after = seq
		}
		if b.Ended {
			if err := s.flush(ctx); err != nil {
				return err
			}
			return errEnded
		}
	}
}

// record adds one record, flushing before it when the buffer is full or it
// lies past the recorded boundary, and after it when it is the boundary.
func (s *session) record(ctx context.Context, seq string, r *stream.Record) error {
	a := s.a
	if s.ck.FlushAt != "" && stream.CompareSeq(seq, s.ck.FlushAt) > 0 {
		// The boundary record is gone (trimmed from the stream): cut at
		// what there is.
		a.log.Warn("archive: recorded flush boundary not found in the stream", "shard", s.shard, "flush_at", s.ck.FlushAt, "seq", seq)
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	ev, err := event.Unmarshal(r.Data)
	if err != nil {
		// Ingest validated every event: this record is not one. Skipping
		// it is deterministic, so a rebuild skips it too.
		a.met.errors.WithLabelValues("decode").Inc()
		a.log.Error("archive: undecodable record skipped", "shard", s.shard, "seq", seq, "err", err)
	} else {
		err = a.w.Add(s.shard, seq, r.Data, ev)
		if errors.Is(err, archive.ErrFull) {
			if s.ck.FlushAt != "" {
				a.log.Warn("archive: buffer full before the recorded flush boundary (writer limits changed?); cutting early", "shard", s.shard, "flush_at", s.ck.FlushAt)
			}
			if err := s.flush(ctx); err != nil {
				return err
			}
			err = a.w.Add(s.shard, seq, r.Data, ev)
		}
		if err != nil {
			a.met.errors.WithLabelValues("add").Inc()
			return fmt.Errorf("archive shard %s seq %s: %w", s.shard, seq, err)
		}
		s.added++
		a.pending(s.shard, r.Arrival)
	}
	if seq == s.ck.FlushAt {
		return s.flush(ctx)
	}
	return nil
}

// flush runs the protocol of the archive package doc: persist the boundary
// (the last record added), write every buffered object, persist the new
// durable position. s.ck changes only after a save succeeded, so it never
// runs ahead of what a restart would load.
func (s *session) flush(ctx context.Context) error {
	a := s.a
	last := a.w.Last(s.shard)
	if last == "" || stream.CompareSeq(last, s.ck.Durable) <= 0 {
		if s.ck.FlushAt == "" {
			return nil
		}
		// A recorded boundary whose records are all gone.
		next := Checkpoint{Durable: s.ck.Durable}
		if err := s.save(ctx, next); err != nil {
			return err
		}
		s.ck = next
		return nil
	}
	if s.ck.FlushAt != last {
		next := Checkpoint{Durable: s.ck.Durable, FlushAt: last}
		if err := s.save(ctx, next); err != nil {
			return err
		}
		s.ck = next
	}
	if _, err := a.w.Flush(ctx, s.shard); err != nil {
		if ctx.Err() == nil {
			a.met.errors.WithLabelValues("flush").Inc()
		}
		return fmt.Errorf("flush shard %s through %s: %w", s.shard, last, err)
	}
	next := Checkpoint{Durable: last}
	if err := s.save(ctx, next); err != nil {
		return err
	}
	s.ck = next
	a.met.events.Add(float64(s.added))
	s.added = 0
	s.progressed = true
	a.caughtUp(s.shard)
	return nil
}

func (s *session) save(ctx context.Context, c Checkpoint) error {
	if err := s.a.ck.Save(ctx, s.shard, c); err != nil {
		if ctx.Err() == nil {
			s.a.met.errors.WithLabelValues("checkpoint").Inc()
		}
		return fmt.Errorf("archive shard %s: %w", s.shard, err)
	}
	return nil
}

// stop flushes what the session holds when Run is stopped, within
// StopTimeout. While replaying toward a recorded boundary it does not: the
// checkpoint already says where the next run cuts.
func (s *session) stop(ctx context.Context) {
	if s.ck.FlushAt != "" && s.a.w.Last(s.shard) != s.ck.FlushAt {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.a.cfg.StopTimeout)
	defer cancel()
	if err := s.flush(sctx); err != nil {
		s.a.log.Warn("archive: final flush failed; the next start redoes it from the checkpoint", "shard", s.shard, "err", err)
	}
}
