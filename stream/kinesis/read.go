package kinesis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/pulsehq/pulse/stream"
	"github.com/pulsehq/pulse/stream/kpl"
)

// cursor is the read state of one shard, kept across Reads so that a Read
// continuing where the previous one stopped reuses the shard iterator and
// the user records already fetched and not yet returned.
type cursor struct {
	mu       sync.Mutex
	pos      string  // position the next Read continues after
	from     bool    // pos is to be read too (ReadFrom), nothing returned yet
	valid    bool    // iter/pending/ended belong to pos
	iter     *string // continues after pending; nil when ended
	pending  []stream.Record
	ended    bool // the shard is closed and every record was fetched
	skipSeq  string
	skipSub  int // drop sub-records <= skipSub of Kinesis record skipSeq
	nextPoll time.Time
	interval time.Duration
	behind   int64
	sub      *subscription // enhanced fan-out: the subscription feeding pending
	efo      bool          // read through sub, not GetRecords

	// Snapshot of pos and from after each Read, and when it ended, for
	// choosing a cursor without waiting for a Read in progress (efo.go).
	at   atomic.Pointer[cursorAt]
	used atomic.Int64 // unix nanoseconds
}

func (s *Stream) cursor(shard string) *cursor {
	s.cursorsMu.Lock()
	defer s.cursorsMu.Unlock()
	c := s.cursors[shard]
	if c == nil {
		c = &cursor{interval: s.cfg.PollEvery, efo: s.consumerARN != ""}
		s.cursors[shard] = c
	}
	return c
}

// Read returns up to limit user records of shard after position after (""
// for the oldest retained record), de-aggregating KPL records. It polls
// GetRecords at most once per PollEvery per shard (less often while the
// shard is idle) and waits up to ReadWait for records before returning an
// empty batch. Ended is set once the shard is closed and read to its end.
// BehindRecords is -1 (Kinesis does not tell); BehindMillis is the
// MillisBehindLatest of the last GetRecords. Reads of one shard are
// serialized; reads of different shards run in parallel. With enhanced
// fan-out (Config.EFOConsumer) records come from the shard's subscription
// instead of GetRecords (efo.go), at the same positions.
func (s *Stream) Read(ctx context.Context, shard, after string, limit int) (stream.Batch, error) {
	if limit <= 0 {
		limit = defaultReadSize
	}
	c := s.cursorFor(shard, after, false)
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.publish()
	if !c.valid || c.from || c.pos != after {
		if err := s.seek(ctx, c, shard, after, false); err != nil {
			return stream.Batch{}, err
		}
	}
	return s.read(ctx, c, shard, limit)
}

// ReadFrom is Read from the record at position from inclusive (a position
// Read returned). The dedup rebuild of the aggregator starts at a record:
// the position before it is no Kinesis record at all when from is the first
// user record of an aggregated record, and asking Kinesis for
// AFTER_SEQUENCE_NUMBER of a number it never handed out is outside its
// documented contract, so this seeks AT_SEQUENCE_NUMBER instead.
func (s *Stream) ReadFrom(ctx context.Context, shard, from string, limit int) (stream.Batch, error) {
	if from == "" {
		return s.Read(ctx, shard, "", limit)
	}
	if limit <= 0 {
		limit = defaultReadSize
	}
	c := s.cursorFor(shard, from, true)
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.publish()
	if err := s.seek(ctx, c, shard, from, true); err != nil {
		return stream.Batch{}, err
	}
	return s.read(ctx, c, shard, limit)
}

// read serves a Read or ReadFrom from c, which is positioned.
func (s *Stream) read(ctx context.Context, c *cursor, shard string, limit int) (stream.Batch, error) {
	deadline := time.Now().Add(s.cfg.ReadWait)
	for {
		if len(c.pending) > 0 {
			n := min(limit, len(c.pending))
			b := stream.Batch{Records: c.pending[:n:n], BehindRecords: -1, BehindMillis: c.behind}
			c.pending = c.pending[n:]
			if len(c.pending) == 0 {
				c.pending = nil
			}
			c.pos, c.from = b.Records[n-1].Seq, false
			b.Ended = c.ended && len(c.pending) == 0
			return b, nil
		}
		if c.ended {
			return stream.Batch{Ended: true, BehindRecords: -1}, nil
		}
		if c.efo {
			got, err := s.receive(ctx, c, shard, deadline)
			if err != nil {
				return stream.Batch{}, err
			}
			if !got {
				return stream.Batch{BehindRecords: -1, BehindMillis: c.behind}, nil
			}
			continue
		}
		if wait := time.Until(c.nextPoll); wait > 0 {
			// Past the deadline, sleep only to it: an empty answer still
			// takes ReadWait, so a caller looping on Read never spins.
			idle := time.Now().Add(wait).After(deadline)
			if idle {
				wait = time.Until(deadline)
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return stream.Batch{}, fmt.Errorf("read shard %s: %w", shard, ctx.Err())
			}
			if idle {
				return stream.Batch{BehindRecords: -1, BehindMillis: c.behind}, nil
			}
		}
		if err := s.fetch(ctx, c, shard, limit); err != nil {
			return stream.Batch{}, err
		}
	}
}

// seek points c at the records after pos, or from pos on when inclusive.
func (s *Stream) seek(ctx context.Context, c *cursor, shard, pos string, inclusive bool) error {
	s.unsubscribe(c)
	c.valid, c.pending, c.ended, c.iter = false, nil, false, nil
	c.skipSeq, c.skipSub = "", 0
	if rp := s.ranges.Load(); rp == nil || (*rp)[shard] == [2]hashKey{} {
		// A shard this Stream has not listed yet (a reshard): its range
		// decides which user records of aggregated records are its own.
		if err := s.refreshShards(ctx); err != nil {
			return fmt.Errorf("read shard %s: %w", shard, err)
		}
	}
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(s.cfg.Stream), ShardId: aws.String(shard)}
	if pos == "" {
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	} else {
		seq, sub, err := parsePosition(pos)
		if err != nil {
			return fmt.Errorf("read shard %s: %w", shard, err)
		}
		in.StartingSequenceNumber = aws.String(seq)
		switch {
		case inclusive:
			// The Kinesis record holding pos, without the user records
			// before pos (-1: none).
			in.ShardIteratorType = types.ShardIteratorTypeAtSequenceNumber
			c.skipSeq, c.skipSub = seq, sub-1
		case sub == lastSub:
			in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		default:
			// Inside an aggregated record: fetch it again, drop what was read.
			in.ShardIteratorType = types.ShardIteratorTypeAtSequenceNumber
			c.skipSeq, c.skipSub = seq, sub
		}
	}
	if c.efo {
		s.subscribe(c, shard, types.StartingPosition{Type: in.ShardIteratorType, SequenceNumber: in.StartingSequenceNumber})
		c.pos, c.from, c.valid = pos, inclusive, true
		return nil
	}
	out, err := s.client.GetShardIterator(ctx, in)
	if err != nil {
		return fmt.Errorf("read shard %s after %q: get iterator: %w", shard, pos, err)
	}
	c.iter, c.pos, c.from, c.valid = out.ShardIterator, pos, inclusive, true
	c.ended = c.iter == nil
	return nil
}

// fetch makes one GetRecords call and appends its user records to pending.
func (s *Stream) fetch(ctx context.Context, c *cursor, shard string, limit int) error {
	out, err := s.client.GetRecords(ctx, &kinesis.GetRecordsInput{
		ShardIterator: c.iter,
		Limit:         aws.Int32(int32(min(limit, maxGetRecords))),
	})
	c.nextPoll = time.Now().Add(c.interval)
	if err != nil {
		var expired *types.ExpiredIteratorException
		var throttled *types.ProvisionedThroughputExceededException
		switch {
		case errors.As(err, &expired):
			// Nothing fetched is pending, so c.pos is exactly where to renew.
			c.nextPoll = time.Time{}
			return s.seek(ctx, c, shard, c.pos, c.from)
		case errors.As(err, &throttled):
			c.interval = min(2*c.interval, s.cfg.MaxPollEvery)
			c.nextPoll = time.Now().Add(c.interval)
			return nil
		}
		return fmt.Errorf("read shard %s after %q: %w", shard, c.pos, err)
	}
	c.iter = out.NextShardIterator
	c.ended = c.iter == nil
	c.behind = aws.ToInt64(out.MillisBehindLatest)
	s.m.millisBehind.WithLabelValues(shard).Set(float64(c.behind))
	if len(out.Records) == 0 && c.behind == 0 {
		c.interval = min(2*c.interval, s.cfg.MaxPollEvery)
	} else {
		c.interval = s.cfg.PollEvery
	}
	c.nextPoll = time.Now().Add(c.interval)
	for _, r := range out.Records {
		c.pending = s.appendUserRecords(c.pending, shard, r, c.skipSeq, c.skipSub)
	}
	if len(out.Records) > 0 {
		// The first record after an AT_SEQUENCE_NUMBER seek is the one to
		// trim; later ones are never it.
		c.skipSeq = ""
	}
	return nil
}

// appendUserRecords de-aggregates r. An aggregated record whose body does
// not decode is passed on whole as a plain record (and counted), so a bad
// record neither stops the shard nor vanishes.
func (s *Stream) appendUserRecords(dst []stream.Record, shard string, r types.Record, skipSeq string, skipSub int) []stream.Record {
	seq := aws.ToString(r.SequenceNumber)
	key := aws.ToString(r.PartitionKey)
	arrival := aws.ToTime(r.ApproximateArrivalTimestamp)
	subs, aggregated, err := kpl.Decode(r.Data)
	if err != nil {
		s.m.corrupt.Inc()
		s.log.Warn("kinesis corrupt aggregated record passed on as plain", "shard", shard, "seq", seq, "err", err)
		subs, aggregated = []kpl.Record{{Data: r.Data}}, false
	}
	// At an AT_SEQUENCE_NUMBER seek, the user records of skipSeq whose
	// position's suffix is at most skipSub were read already (a plain
	// record's suffix, like the last user record's, is lastSub).
	if !aggregated {
		if seq == skipSeq && skipSub >= lastSub {
			return dst
		}
		return append(dst, stream.Record{Seq: position(seq, 0, true), Key: key, Data: r.Data, Arrival: arrival})
	}
	last := len(subs) - 1
	for i, u := range subs {
		sub := i
		if i == last {
			sub = lastSub
		}
		if seq == skipSeq && sub <= skipSub {
			continue
		}
		if !s.inRange(shard, u.PartitionKey, u.ExplicitHashKey) {
			s.m.outOfRange.Inc()
			continue
		}
		dst = append(dst, stream.Record{Seq: position(seq, i, i == last), Key: u.PartitionKey, Data: u.Data, Arrival: arrival})
	}
	return dst
}
