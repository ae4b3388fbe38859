package aggregator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/stream"
)

// errEnded stops a session once a closed shard is applied to its end.
var errEnded = errors.New("aggregator: shard ended")

// runShard works one shard until it ended (closed and fully applied) or ctx
// is done. Failures restart it from the store's position after a backoff:
// the store is the truth, as an apply whose reply was lost may have landed.
func (a *Aggregator) runShard(ctx context.Context, shard string) (ended bool) {
	backoff := a.backoffMin
	for {
		progressed, err := a.session(ctx, shard)
		if errors.Is(err, errEnded) {
			a.log.Info("shard ended", "shard", shard)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if progressed {
			backoff = a.backoffMin
		}
		a.log.Warn("shard worker failed, restarting from the stored position", "shard", shard, "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(backoff*2, backoffMax)
	}
}

// pending is a step handed from the reader to the applier: a commit to
// apply (nil when the read returned nothing) and the lag it leaves.
type pending struct {
	commit  *metric.Commit
	records int
	tally   *tally
	lag     Lag
	entries int
	ended   bool
}

// session loads the position, rebuilds the dedup state and then reads and
// applies until an error, the shard's end or ctx is done. Reading and
// decoding the next commit overlaps applying the previous one (see produce).
func (a *Aggregator) session(ctx context.Context, shard string) (progressed bool, err error) {
	pos, err := a.st.Position(ctx, shard)
	if err != nil {
		a.met.errors.WithLabelValues("position").Inc()
		return false, fmt.Errorf("load position of shard %s: %w", shard, err)
	}
	d := newDedup(a.cfg.DedupWindow, pos.DedupClock)
	first, err := a.rebuild(ctx, shard, pos, d)
	if err != nil {
		return false, err
	}
	a.met.dedup.WithLabelValues(shard).Set(float64(d.entries()))

	ch := make(chan pending)
	ready := make(chan struct{}, 1)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(ch)
		return a.produce(gctx, shard, pos, d, first, ready, ch)
	})
	g.Go(func() error {
		for {
			// One token per receive: the producer takes it before each
			// send, so the buffer of one never blocks this.
			ready <- struct{}{}
			p, ok := <-ch
			if !ok {
				return nil
			}
			if p.commit != nil {
				start := a.cfg.Clock()
				if err := a.st.Apply(gctx, p.commit); err != nil {
					a.met.errors.WithLabelValues("apply").Inc()
					return fmt.Errorf("apply shard %s records %s..%s: %w", shard, p.commit.First, p.commit.Last, err)
				}
				a.met.applySecs.Observe(a.cfg.Clock().Sub(start).Seconds())
				a.met.batch.Observe(float64(p.records))
				a.met.add(p.tally)
				a.met.dedup.WithLabelValues(shard).Set(float64(p.entries))
				progressed = true
			}
			a.setLag(shard, p.lag)
			if p.ended {
				return errEnded
			}
		}
	})
	err = g.Wait()
	return progressed, err
}

// produce reads batches after pos and folds them into commits on ch. It
// pipelines: while the applier is busy with commit N, the batches read
// meanwhile accumulate into commit N+1, which is handed over as soon as the
// applier is idle again (it puts a token in ready before each receive).
// Store work grows with the distinct keys of a commit, not its events, so
// under load commits grow (up to MaxCommit records or MaxCommitBytes of
// record data) and cost less per event; at low rates the applier is idle
// and every read is applied at once. A commit is also handed over (waiting
// for the applier if need be) once the reader caught up with the stream, so
// a commit never waits on a further read.
// first, when not nil, is an already read batch to start with.
func (a *Aggregator) produce(ctx context.Context, shard string, pos metric.Position, d *dedup, first *stream.Batch, ready <-chan struct{}, ch chan<- pending) error {
	c := newCombiner(a.plan)
	var (
		p     pending
		from  string // first record of the accumulating commit
		bytes int
	)
	for {
		var b stream.Batch
		limit := min(a.cfg.MaxBatch, a.cfg.MaxCommit-p.records)
		if first != nil {
			b, first = *first, nil
		} else {
			var err error
			b, err = a.src.Read(ctx, shard, pos.Seq, limit)
			if err != nil {
				a.met.errors.WithLabelValues("read").Inc()
				return fmt.Errorf("read shard %s after %q: %w", shard, pos.Seq, err)
			}
			if b.Trimmed && len(b.Records) > 0 {
				// Records between pos.Seq and this batch left the stream's
				// retention before they were applied: they are lost to the
				// aggregates (the archive still has them for a replay).
				a.met.errors.WithLabelValues("trimmed").Inc()
				a.log.Error("shard trimmed past the applied position; records lost to aggregation", "shard", shard, "after", pos.Seq)
			}
		}
		p.lag, p.ended = Lag{Records: b.BehindRecords, Millis: b.BehindMillis}, b.Ended
		if len(b.Records) > 0 {
			if p.records == 0 {
				from = b.Records[0].Seq
				p.tally = &tally{skipped: make([]int64, len(a.plan.steps))}
			}
			for i := range b.Records {
				bytes += len(b.Records[i].Data)
				a.fold(c, d, &b.Records[i], p.tally)
			}
			pos.Seq = b.Records[len(b.Records)-1].Seq
			p.records += len(b.Records)
		}
		// Caught up: nothing more waiting, as far as the stream can tell
		// (else a short read says so).
		caughtUp := len(b.Records) == 0 || b.Ended || b.BehindRecords == 0 || (b.BehindRecords < 0 && len(b.Records) < limit)
		wait := caughtUp || p.records >= a.cfg.MaxCommit || bytes >= a.cfg.MaxCommitBytes
		if !wait {
			select {
			case <-ready:
			default:
				continue // the applier is busy: keep accumulating
			}
		} else {
			select {
			case <-ready:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if p.records > 0 {
			pos.DedupFrom, pos.DedupClock = d.position()
			p.commit = &metric.Commit{Shard: shard, First: from, Last: pos.Seq, Pos: pos, Update: c.update()}
			p.entries = d.entries()
		}
		// The applier put its token in ready right before receiving, so
		// this send does not wait long.
		select {
		case ch <- p:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b.Ended {
			return nil
		}
		p, bytes = pending{}, 0
	}
}

// fold decodes, deduplicates and combines one record.
func (a *Aggregator) fold(c *combiner, d *dedup, r *stream.Record, t *tally) {
	e, err := event.Unmarshal(r.Data)
	if err != nil {
		t.outcome[4]++ // undecodable
		return
	}
	if d.seen(r.Seq, e.RT, keyOf(e.Site, e.ID)) {
		t.outcome[3]++ // duplicate
		return
	}
	t.outcome[c.add(&e, t)]++
}

// rebuild re-feeds the records pos.DedupFrom..pos.Seq into d without
// applying them, which restores the dedup state exactly as it was when pos
// was committed. Records after pos.Seq that the last read returned are
// given back as the first batch to apply.
func (a *Aggregator) rebuild(ctx context.Context, shard string, pos metric.Position, d *dedup) (*stream.Batch, error) {
	if pos.Seq == "" || pos.DedupFrom == "" {
		return nil, nil
	}
	after := prevSeq(pos.DedupFrom)
	// A source whose positions are not consecutive numbers (Kinesis) reads
	// from DedupFrom itself: prevSeq of its positions is no position.
	fr, inclusive := a.src.(fromReader)
	n := 0
	for {
		var b stream.Batch
		var err error
		if inclusive && n == 0 {
			b, err = fr.ReadFrom(ctx, shard, pos.DedupFrom, a.cfg.MaxBatch)
		} else {
			b, err = a.src.Read(ctx, shard, after, a.cfg.MaxBatch)
		}
		if err != nil {
			a.met.errors.WithLabelValues("read").Inc()
			return nil, fmt.Errorf("rebuild dedup state of shard %s: read after %q: %w", shard, after, err)
		}
		if b.Trimmed && n == 0 {
			a.met.errors.WithLabelValues("trimmed").Inc()
			a.log.Warn("dedup window partly trimmed from the stream; duplicates of the trimmed records will not be recognized", "shard", shard, "from", pos.DedupFrom)
		}
		if len(b.Records) == 0 {
			// The stream lost records up to pos.Seq (retention); nothing
			// more to rebuild from.
			a.log.Warn("dedup rebuild ended before the stored position", "shard", shard, "seq", pos.Seq, "reached", after)
			return nil, nil
		}
		for i := range b.Records {
			r := &b.Records[i]
			if stream.CompareSeq(r.Seq, pos.Seq) > 0 {
				b.Records = b.Records[i:]
				a.log.Info("dedup state rebuilt", "shard", shard, "records", n, "entries", d.entries())
				return &b, nil
			}
			if e, err := event.Unmarshal(r.Data); err == nil {
				d.seen(r.Seq, e.RT, keyOf(e.Site, e.ID))
			}
			n++
		}
		after = b.Records[len(b.Records)-1].Seq
		if stream.CompareSeq(after, pos.Seq) >= 0 || b.Ended {
			a.log.Info("dedup state rebuilt", "shard", shard, "records", n, "entries", d.entries())
			if b.Ended {
				b.Records = nil
				return &b, nil
			}
			return nil, nil
		}
	}
}

// fromReader is a Source that reads from a position inclusive.
type fromReader interface {
	ReadFrom(ctx context.Context, shard, from string, limit int) (stream.Batch, error)
}

// prevSeq returns the sequence number just before seq, so that reading
// after it starts at seq. Sequence numbers are decimal strings from 1; the
// one before 1 is "", the shard's start.
func prevSeq(seq string) string {
	if seq == "" || seq == "0" || seq == "1" {
		return ""
	}
	b := []byte(seq)
	i := len(b) - 1
	for ; i >= 0 && b[i] == '0'; i-- {
		b[i] = '9'
	}
	if i < 0 {
		return "" // not a decimal number; read from the start
	}
	b[i]--
	if b[0] == '0' && len(b) > 1 {
		b = b[1:]
	}
	return string(b)
}
