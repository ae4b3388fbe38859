package local

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// recoverJournal puts back the records that the journal files hold beyond
// each shard's (already recovered) segments, makes them durable there and
// leaves one journal open for the writer, in a new generation. Records at
// or below a shard's tip are already in its segments; one that would leave
// a gap after the tip means records were lost, and Open fails rather than
// go on without them.
func (l *Log) recoverJournal() error {
	gens, err := listJournals(l.dir)
	if err != nil {
		return err
	}
	replayed := 0
	for _, gen := range gens {
		n, err := l.replayJournal(gen)
		if err != nil {
			return err
		}
		replayed += n
	}
	for _, s := range l.shards {
		if err := s.writeBuf(); err != nil {
			return err
		}
		if err := s.syncActive(); err != nil {
			return err
		}
		s.publish()
	}
	if replayed > 0 {
		l.cfg.Logger.Warn("records put back from the journal", slog.Int("records", replayed))
	}
	limit := l.cfg.JournalBytes
	if len(gens) == 0 {
		l.j, err = createJournal(l.dir, 1, limit)
		return err
	}
	// Every record is in its segment now: reuse the newest journal file in
	// a new generation, keep the one before as the spare, drop the others.
	last := gens[len(gens)-1]
	keep := gens[max(0, len(gens)-2):]
	for _, gen := range gens[:len(gens)-len(keep)] {
		if err := os.Remove(filepath.Join(l.dir, journalName(gen))); err != nil {
			return fmt.Errorf("remove old journal: %w", err)
		}
	}
	if len(keep) == 2 {
		if l.spare, err = openJournal(l.dir, keep[0], limit); err != nil {
			return err
		}
	}
	if l.j, err = openJournal(l.dir, last, limit); err != nil {
		return err
	}
	return l.j.reuse(last + 1)
}

// replayJournal applies one journal file and returns how many records it
// put back.
func (l *Log) replayJournal(gen uint64) (int, error) {
	path := filepath.Join(l.dir, journalName(gen))
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	n := 0
	err = readFrames(f, gen, func(payload []byte) error {
		return forChunks(payload, func(shard int, records []byte) error {
			if shard >= len(l.shards) {
				return fmt.Errorf("%w: journal names shard %d of %d", ErrCorrupt, shard, len(l.shards))
			}
			s := l.shards[shard]
			return forRecords(records, func(raw []byte, rec rawRecord) error {
				switch {
				case rec.Seq <= s.seq:
					return nil // already in the segment
				case rec.Seq != s.seq+1:
					return fmt.Errorf("%w: journal has shard %s record %d but the segments end at %d", ErrCorrupt, s.id, rec.Seq, s.seq)
				}
				if err := l.replay(s, raw, rec); err != nil {
					return err
				}
				n++
				return nil
			})
		})
	})
	if err != nil {
		return n, fmt.Errorf("replay %s: %w", path, err)
	}
	return n, nil
}

// replay appends one record, already encoded, to the shard's active
// segment, as the writer would have.
func (l *Log) replay(s *shard, raw []byte, rec rawRecord) error {
	if s.wsize+int64(len(s.buf)+len(raw)) > s.cfg.SegmentBytes && s.wsize+int64(len(s.buf)) > 0 {
		if err := l.roll(s); err != nil {
			return err
		}
	}
	s.seq = rec.Seq
	s.addPending(s.wsize + int64(len(s.buf)))
	if s.firstMs == 0 {
		s.firstMs = rec.ArrivalMs
	}
	s.lastMs = rec.ArrivalMs
	s.buf = append(s.buf, raw...)
	if len(s.buf) >= flushBytes {
		return s.writeBuf()
	}
	return nil
}
