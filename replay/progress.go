package replay

import (
	"context"
	"time"

	"github.com/pulsehq/pulse/stream"
)

// Counters are what a Source has served so far.
type Counters struct {
	Events       int64 // events in range served for the first time
	ArchiveBytes int64 // archive bytes selected (of the shards read so far)
	ArchiveDone  int64 // of which read through
	Tail         int   // shards reading the stream (past their archive part)
	Shards       int   // shards read so far
}

// Counters returns the running totals.
func (s *Source) Counters() Counters {
	c := Counters{Events: s.events.Load(), ArchiveBytes: s.archiveBytes.Load(), ArchiveDone: s.archiveDone.Load()}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.shards {
		ss.mu.Lock()
		c.Shards++
		if ss.inTail {
			c.Tail++
		}
		ss.mu.Unlock()
	}
	return c
}

// caughtUp reports whether every shard of the stream has been read to its
// tip (or cap) and the store's position reached what was served then.
func (s *Source) caughtUp(ctx context.Context, pos func(ctx context.Context, shard string) (string, error)) (bool, error) {
	shards, err := s.st.Shards(ctx)
	if err != nil {
		return false, err
	}
	for _, sh := range shards {
		s.mu.Lock()
		ss := s.shards[sh.ID]
		s.mu.Unlock()
		if ss == nil {
			return false, nil
		}
		ss.mu.Lock()
		caught, tip := ss.caught, ss.tip
		ss.mu.Unlock()
		if !caught {
			return false, nil
		}
		p, err := pos(ctx, sh.ID)
		if err != nil {
			return false, err
		}
		if stream.CompareSeq(p, tip) < 0 {
			return false, nil
		}
	}
	return true, nil
}

// rate is a moving events/s estimate over the last polls.
type rate struct {
	at     []time.Time
	events []int64
}

func (r *rate) add(t time.Time, events int64) float64 {
	r.at, r.events = append(r.at, t), append(r.events, events)
	if len(r.at) > 20 {
		r.at, r.events = r.at[1:], r.events[1:]
	}
	d := r.at[len(r.at)-1].Sub(r.at[0]).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(r.events[len(r.events)-1]-r.events[0]) / d
}
