package aggregator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/stream"
)

// errEnded stops a session once a closed shard is applied to its end;
// errFenced once the store answered that a newer writer owns the shard.
var (
	errEnded  = errors.New("aggregator: shard ended")
	errFenced = errors.New("aggregator: fenced by a newer owner of the shard")
)

// stop is why a shard's worker returned.
type stop int

const (
	stopCtx    stop = iota // ctx done
	stopEnded              // closed shard applied to its end
	stopFenced             // a newer lease holder wrote the shard
)

// runShard works one shard until it ended (closed and fully applied) or ctx
// is done, unleased (the fence stored with the position is carried on).
func (a *Aggregator) runShard(ctx context.Context, shard string) (ended bool) {
	return a.work(ctx, shard, 0, false) == stopEnded
}

// work runs sessions of shard until one ends it. Failures restart it from
// the store's position after a backoff: the store is the truth, as an apply
// whose reply was lost may have landed. Leased, every commit carries fence
// and the worker stops for good once the store says a newer writer took the
// shard (its lease is gone; the new owner continues).
func (a *Aggregator) work(ctx context.Context, shard string, fence int64, leased bool) stop {
	backoff := a.backoffMin
	var cuts []string // commit boundaries to keep (see produce)
	for {
		progressed, err := a.session(ctx, shard, fence, leased, &cuts)
		switch {
		case errors.Is(err, errEnded):
			a.log.Info("shard ended", "shard", shard)
			return stopEnded
		case leased && (errors.Is(err, errFenced) || isFenced(err)):
			a.met.errors.WithLabelValues("fenced").Inc()
			a.log.Warn("shard taken over by a newer lease holder; worker stops", "shard", shard, "fence", fence, "err", err)
			return stopFenced
		}
		if ctx.Err() != nil {
			return stopCtx
		}
		if progressed {
			backoff = a.backoffMin
		}
		var ov interface{ AppliedTo() string }
		if errors.As(err, &ov) && ov.AppliedTo() != "" {
			// A site holds the shard up to a boundary this worker's commit
			// straddled (an earlier writer stopped between the site parts
			// of a commit on Redis Cluster): end a commit exactly there.
			cuts = addCut(cuts, ov.AppliedTo())
			a.log.Warn("commit overlaps a partly applied one; cutting commits at its end", "shard", shard, "at", ov.AppliedTo())
			backoff = a.backoffMin
		}
		a.log.Warn("shard worker failed, restarting from the stored position", "shard", shard, "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return stopCtx
		case <-t.C:
		}
		backoff = min(backoff*2, backoffMax)
	}
}

// isFenced matches a store's fencing refusal by behaviour, so the
// aggregator does not depend on the store's package.
func isFenced(err error) bool {
	var f interface{ Fenced() bool }
	return errors.As(err, &f) && f.Fenced()
}

// addCut inserts c into the sorted set cuts.
func addCut(cuts []string, c string) []string {
	i, found := slices.BinarySearchFunc(cuts, c, stream.CompareSeq)
	if found {
		return cuts
	}
	return slices.Insert(cuts, i, c)
}

// cutBetween reports whether a boundary c with lo <= c < hi is in cuts: a
// commit holding records lo and hi would straddle it.
func cutBetween(cuts []string, lo, hi string) bool {
	i, _ := slices.BinarySearchFunc(cuts, lo, stream.CompareSeq)
	return i < len(cuts) && stream.CompareSeq(cuts[i], hi) < 0
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
func (a *Aggregator) session(ctx context.Context, shard string, fence int64, leased bool, cuts *[]string) (progressed bool, err error) {
	pos, err := a.st.Position(ctx, shard)
	if err != nil {
		a.met.errors.WithLabelValues("position").Inc()
		return false, fmt.Errorf("load position of shard %s: %w", shard, err)
	}
	if leased {
		if pos.Fence > fence {
			return false, fmt.Errorf("shard %s position has fence %d, this worker %d: %w", shard, pos.Fence, fence, errFenced)
		}
		pos.Fence = fence
	}
	pend, err := a.st.Pending(ctx, shard)
	if err != nil {
		a.met.errors.WithLabelValues("position").Inc()
		return false, fmt.Errorf("load pending commit of shard %s: %w", shard, err)
	}
	if pend != "" {
		*cuts = addCut(*cuts, pend)
	}
	// Boundaries at or before the position are behind us.
	i, _ := slices.BinarySearchFunc(*cuts, pos.Seq, stream.CompareSeq)
	*cuts = slices.Delete(*cuts, 0, i)
	d := newDedup(a.cfg.DedupWindow, pos.DedupClock)
	if err := a.inherit(ctx, shard, pos, d); err != nil {
		return false, err
	}
	first, err := a.rebuild(ctx, shard, pos, d)
	if err != nil {
		return false, err
	}
	a.met.dedup.WithLabelValues(shard).Set(float64(d.entries()))
	cutsNow := slices.Clone(*cuts)

	ch := make(chan pending)
	ready := make(chan struct{}, 1)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(ch)
		return a.produce(gctx, shard, pos, d, first, cutsNow, ready, ch)
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
				start := a.cfg.Now()
				if err := a.st.Apply(gctx, p.commit); err != nil {
					a.met.errors.WithLabelValues("apply").Inc()
					return fmt.Errorf("apply shard %s records %s..%s: %w", shard, p.commit.First, p.commit.Last, err)
				}
				a.met.applySecs.Observe(a.cfg.Now().Sub(start).Seconds())
				a.met.batch.Observe(float64(p.records))
				a.met.add(p.tally)
				a.met.dedup.WithLabelValues(shard).Set(float64(p.entries))
				progressed = true
			}
			a.setLag(shard, p.lag)
			if p.ended {
				if err := a.st.End(gctx, shard, pos.Fence); err != nil {
					a.met.errors.WithLabelValues("apply").Inc()
					return fmt.Errorf("record the end of shard %s: %w", shard, err)
				}
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
//
// No commit straddles a boundary in cuts (sorted): a commit holding records
// up to a cut c and records after it is split there. The cuts are ends of
// earlier commits that reached only some sites (Redis Cluster), so every
// site's checkpoint stays a commit boundary and each site part is either
// already applied whole (skipped) or not at all.
func (a *Aggregator) produce(ctx context.Context, shard string, pos metric.Position, d *dedup, first *stream.Batch, cuts []string, ready <-chan struct{}, ch chan<- pending) error {
	c := newCombiner(a.plan)
	var (
		p        pending
		from     string // first record of the accumulating commit
		bytes    int
		sent     time.Time // when the last commit was handed over
		lingered bool      // the last read was made to fill the commit until sent+MinCommitInterval
	)
	for {
		var b stream.Batch
		limit := min(a.cfg.MaxBatch, a.cfg.MaxCommit-p.records)
		if first != nil {
			b, first = *first, nil
		} else {
			var until time.Time
			if lingered {
				until = sent.Add(a.cfg.MinCommitInterval)
			}
			var err error
			if b, err = a.readUntil(ctx, shard, pos.Seq, limit, until); err != nil {
				return err
			}
		}
		rest := splitAtCut(&b, cuts, pos.Seq, p.records > 0)
		if !lingered || len(b.Records) > 0 {
			// A read cut short by the linger's end tells nothing of the lag.
			p.lag, p.ended = Lag{Records: b.BehindRecords, Millis: b.BehindMillis}, b.Ended
		}
		if len(b.Records) > 0 {
			if p.records == 0 {
				from = b.Records[0].Seq
			}
			bytes += a.foldBatch(c, d, &b, &p)
			pos.Seq = b.Records[len(b.Records)-1].Seq
		}
		// Caught up: nothing more waiting, as far as the stream can tell
		// (else a short read says so).
		caughtUp := len(b.Records) == 0 || b.Ended || b.BehindRecords == 0 || (b.BehindRecords < 0 && len(b.Records) < limit)
		full := rest != nil || p.records >= a.cfg.MaxCommit || bytes >= a.cfg.MaxCommitBytes
		if lingered = a.linger(&b, caughtUp, full, p.records, sent); lingered {
			continue
		}
		wait := caughtUp || full
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
			sent = a.cfg.Now()
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
		if rest != nil {
			first = rest
		}
	}
}

// foldBatch folds b's records into the accumulating commit p and returns
// their bytes.
func (a *Aggregator) foldBatch(c *combiner, d *dedup, b *stream.Batch, p *pending) (bytes int) {
	if p.records == 0 {
		p.tally = &tally{skipped: make([]int64, len(a.plan.steps))}
	}
	for i := range b.Records {
		bytes += len(b.Records[i].Data)
		a.fold(c, d, &b.Records[i], p.tally)
	}
	p.records += len(b.Records)
	return bytes
}

// linger reports whether a worker that just read b reads on before
// handing its commit of records over: when it caught up soon after the
// last commit (sent) with records that arrived meanwhile, it reads until
// MinCommitInterval after it. Store work grows with a commit's distinct
// keys, so a commit every few milliseconds costs Redis several times what
// one per interval does. A read that brings nothing ends the wait.
func (a *Aggregator) linger(b *stream.Batch, caughtUp, full bool, records int, sent time.Time) bool {
	return caughtUp && !full && !b.Ended && len(b.Records) > 0 && records > 0 &&
		a.cfg.MinCommitInterval > 0 && a.cfg.Now().Before(sent.Add(a.cfg.MinCommitInterval))
}

// readUntil is read that gives up at until (when not zero) and then
// returns an empty batch: a read waiting for new records must not hold a
// commit past its MinCommitInterval.
func (a *Aggregator) readUntil(ctx context.Context, shard, after string, limit int, until time.Time) (stream.Batch, error) {
	if until.IsZero() {
		return a.read(ctx, shard, after, limit)
	}
	rctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	b, err := a.src.Read(rctx, shard, after, limit)
	if err != nil && ctx.Err() == nil && rctx.Err() != nil {
		return stream.Batch{}, nil
	}
	return a.checkRead(shard, after, b, err)
}

// read reads up to limit records of shard after seq, and reports records
// the stream dropped before they were applied.
func (a *Aggregator) read(ctx context.Context, shard, after string, limit int) (stream.Batch, error) {
	b, err := a.src.Read(ctx, shard, after, limit)
	return a.checkRead(shard, after, b, err)
}

// checkRead counts and wraps a failed read, and logs records the stream
// dropped before they were applied.
func (a *Aggregator) checkRead(shard, after string, b stream.Batch, err error) (stream.Batch, error) {
	if err != nil {
		a.met.errors.WithLabelValues("read").Inc()
		return b, fmt.Errorf("read shard %s after %q: %w", shard, after, err)
	}
	if b.Trimmed && len(b.Records) > 0 {
		// Records between after and this batch left the stream's retention
		// before they were applied: they are lost to the aggregates (the
		// archive still has them for a replay).
		a.met.errors.WithLabelValues("trimmed").Inc()
		a.log.Error("shard trimmed past the applied position; records lost to aggregation", "shard", shard, "after", after)
	}
	return b, nil
}

// splitAtCut cuts b at the first boundary in cuts (sorted) that falls
// between its records, or between after and its first record when the
// commit already holds records (open), so that no commit straddles a cut.
// It returns the records after the cut, carrying the batch's lag and end,
// or nil when b holds no cut.
func splitAtCut(b *stream.Batch, cuts []string, after string, open bool) *stream.Batch {
	if len(cuts) == 0 {
		return nil
	}
	last := after
	for i := range b.Records {
		if (open || i > 0) && cutBetween(cuts, last, b.Records[i].Seq) {
			rest := &stream.Batch{Records: b.Records[i:], BehindRecords: b.BehindRecords, BehindMillis: b.BehindMillis, Ended: b.Ended}
			b.Records, b.Ended = b.Records[:i], false
			return rest
		}
		last = b.Records[i].Seq
	}
	return nil
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
	after := "" // the last record read; none before the first read
	n := 0
	for reads := 0; ; reads++ {
		var b stream.Batch
		var err error
		if reads == 0 {
			b, err = a.src.ReadFrom(ctx, shard, pos.DedupFrom, a.cfg.MaxBatch)
		} else {
			b, err = a.src.Read(ctx, shard, after, a.cfg.MaxBatch)
		}
		if err != nil {
			a.met.errors.WithLabelValues("read").Inc()
			return nil, fmt.Errorf("rebuild dedup state of shard %s: read from %q: %w", shard, pos.DedupFrom, err)
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

// inherit gives d the final dedup states of shard's parents (after a
// reshard), so that a retry landing in the child after its original landed
// in a parent is recognized. A child starts only after its parents ended,
// so their stored positions are final. Parents whose window is long past
// the child's position are left out.
func (a *Aggregator) inherit(ctx context.Context, shard string, pos metric.Position, d *dedup) error {
	shards, err := a.src.Shards(ctx)
	if err != nil {
		a.met.errors.WithLabelValues("shards").Inc()
		return fmt.Errorf("list shards for the parents of %s: %w", shard, err)
	}
	byID := make(map[string]stream.Shard, len(shards))
	for _, s := range shards {
		byID[s.ID] = s
	}
	return a.inheritFrom(ctx, byID, shard, pos, d)
}

// inheritFrom gives d the final states of shard's parents in byID, each
// with its own parents' states in turn: after two reshards within one
// window, the original of a retry landing in a grandchild may be in the
// grandparent. Every ancestor is kept only while its clock is within two
// windows of its child's, which bounds the lineage walked.
func (a *Aggregator) inheritFrom(ctx context.Context, byID map[string]stream.Shard, shard string, pos metric.Position, d *dedup) error {
	for _, p := range byID[shard].Parents {
		if _, listed := byID[p]; !listed {
			continue // trimmed from the stream
		}
		ppos, err := a.st.Position(ctx, p)
		if err != nil {
			a.met.errors.WithLabelValues("position").Inc()
			return fmt.Errorf("load position of %s, parent of %s: %w", p, shard, err)
		}
		if ppos.Seq == "" || ppos.DedupFrom == "" || pos.DedupClock-ppos.DedupClock > 2*a.cfg.DedupWindow.Milliseconds() {
			continue
		}
		pd := newDedup(a.cfg.DedupWindow, ppos.DedupClock)
		if _, err := a.rebuild(ctx, p, ppos, pd); err != nil {
			return fmt.Errorf("dedup state of %s, parent of %s: %w", p, shard, err)
		}
		if err := a.inheritFrom(ctx, byID, p, ppos, pd); err != nil {
			return err
		}
		d.inherited = append(d.inherited, pd)
	}
	return nil
}
