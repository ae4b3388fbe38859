package replay

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/stream"
)

// Stream is the live stream: stream/local or stream/kinesis.
type Stream interface {
	Shards(ctx context.Context) ([]stream.Shard, error)
	Read(ctx context.Context, shard, after string, limit int) (stream.Batch, error)
}

// SourceConfig configures a Source. Zero values mean the documented
// defaults.
type SourceConfig struct {
	// Archive holds the archived events; nil means the stream alone.
	Archive archive.ObjectStore
	// Durable returns the archiver's durable checkpoint of a shard: every
	// record through it is in the archive. Objects after it (a flush in
	// progress) are not used; the stream serves those records. nil means
	// the archive is not used.
	Durable func(ctx context.Context, shard string) (string, error)
	// From and To (unix ms) keep the events with From <= ts < To; To 0
	// means no upper bound. Both 0: everything.
	From, To int64
	// TimeRule is the aggregator's event-time rule; with From or To it
	// widens the archive listing from event time to the receive hours the
	// archive is partitioned by. Zero fields take event.DefaultTimeRule's.
	TimeRule event.TimeRule
}

// Source is the chained aggregator.Source of a replay: per shard, the
// archive, then the stream. Safe for concurrent use.
type Source struct {
	st  Stream
	cfg SourceConfig

	listMu   sync.Mutex
	listed   bool
	byShard  map[string][]objRef
	durables map[string]string // checkpoints loaded before the listing

	mu     sync.Mutex
	shards map[string]*shardState

	events       atomic.Int64 // records served for the first time, in range
	archiveBytes atomic.Int64 // selected archive bytes
	archiveDone  atomic.Int64 // archive bytes of groups read through
}

type objRef struct {
	key         string
	first, last string
	size        int64
}

// group is a run of objects of one shard whose seq ranges overlap: the
// objects of one archiver flush.
type group struct {
	objs []objRef
	last string
	size int64
}

type shardState struct {
	mu      sync.Mutex // one Read of a shard at a time
	loaded  bool
	durable string
	groups  []group

	m      *merger
	mGroup int
	mPos   string // last seq the merger returned
	mSent  string // last seq served from the merger (mPos or before it, when out-of-range records followed)

	served string // highest seq served so far (progress)
	doneTo int    // groups counted in archiveDone

	capSeq string // verify: serve nothing after it
	capped bool

	caught bool   // a stream read found nothing behind (or hit the cap)
	tip    string // the last seq served when caught
	inTail bool
}

// NewSource returns a chained source over st and cfg.Archive.
func NewSource(st Stream, cfg SourceConfig) *Source {
	return &Source{st: st, cfg: cfg, shards: map[string]*shardState{}}
}

// Shards implements aggregator.Source: the stream's shards.
func (s *Source) Shards(ctx context.Context) ([]stream.Shard, error) {
	return s.st.Shards(ctx)
}

func (s *Source) inRange(ts int64) bool {
	if s.cfg.From == 0 && s.cfg.To == 0 {
		return true
	}
	return ts >= s.cfg.From && (s.cfg.To == 0 || ts < s.cfg.To)
}

// list lists the archive once, after loading the durable checkpoint of
// every shard of the stream: every object through a checkpoint was
// written before the checkpoint was saved, so a listing taken after it
// holds them all. A checkpoint loaded after the listing may be newer than
// it (the archiver flushed meanwhile): the source would skip the records
// of the objects it did not list and wait for a position it never serves.
// An error is not kept: the next read tries again.
func (s *Source) list(ctx context.Context) error {
	s.listMu.Lock()
	defer s.listMu.Unlock()
	if s.listed {
		return nil
	}
	durables := map[string]string{}
	byShard := map[string][]objRef{}
	if s.cfg.Archive != nil && s.cfg.Durable != nil {
		shards, err := s.st.Shards(ctx)
		if err != nil {
			return fmt.Errorf("replay: list shards: %w", err)
		}
		for _, sh := range shards {
			if durables[sh.ID], err = s.loadDurable(ctx, sh.ID); err != nil {
				return err
			}
		}
		if byShard, err = s.listObjects(ctx); err != nil {
			return err
		}
	}
	s.byShard, s.durables, s.listed = byShard, durables, true
	return nil
}

func (s *Source) loadDurable(ctx context.Context, shard string) (string, error) {
	d, err := s.cfg.Durable(ctx, shard)
	if err != nil {
		return "", fmt.Errorf("replay: archive checkpoint of shard %s: %w", shard, err)
	}
	return d, nil
}

// archived returns the durable checkpoint of shard and the archive objects
// of shard, listed after it. A shard the stream did not have at the
// listing (a reshard since) gets a listing of its own.
func (s *Source) archived(ctx context.Context, shard string) (string, []objRef, error) {
	if err := s.list(ctx); err != nil {
		return "", nil, err
	}
	if s.cfg.Archive == nil || s.cfg.Durable == nil {
		return "", nil, nil
	}
	s.listMu.Lock()
	d, ok := s.durables[shard]
	objs := s.byShard[shard]
	s.listMu.Unlock()
	if ok {
		return d, objs, nil
	}
	d, err := s.loadDurable(ctx, shard)
	if err != nil {
		return "", nil, err
	}
	byShard, err := s.listObjects(ctx)
	if err != nil {
		return "", nil, err
	}
	return d, byShard[shard], nil
}

// listObjects lists the archive objects of the source's range, by shard.
func (s *Source) listObjects(ctx context.Context) (map[string][]objRef, error) {
	var infos []archive.ObjectInfo
	var err error
	// Without an end, one listing of everything (partition by partition
	// up to "forever" would never end); with one, the partitions of the
	// range.
	rule := s.cfg.TimeRule.WithDefaults()
	// Partitions are receive hours: an event counted at a time in
	// [From, To) was received in rule.ReceivedWithin(From, To).
	rlo, rhi := rule.ReceivedWithin(s.cfg.From, s.cfg.To)
	if s.cfg.To == 0 {
		infos, err = archive.AllObjects(ctx, s.cfg.Archive)
	} else {
		infos, err = archive.Objects(ctx, s.cfg.Archive, msTime(rlo), msTime(rhi))
	}
	if err != nil {
		return nil, fmt.Errorf("replay: list archive: %w", err)
	}
	first := archive.PartitionOf(0)
	if s.cfg.From != 0 {
		first = archive.PartitionOf(rlo)
	}
	byShard := map[string][]objRef{}
	for _, o := range infos {
		k, err := archive.ParseKey(o.Key)
		if err != nil || k.Partition < first {
			continue
		}
		byShard[k.Shard] = append(byShard[k.Shard], objRef{key: o.Key, first: k.First, last: k.Last, size: o.Size})
	}
	return byShard, nil
}

// state returns the shard's state, locked, loading its archive part once.
func (s *Source) state(ctx context.Context, shard string) (*shardState, error) {
	s.mu.Lock()
	ss := s.shards[shard]
	if ss == nil {
		ss = &shardState{}
		s.shards[shard] = ss
	}
	s.mu.Unlock()
	ss.mu.Lock()
	if ss.loaded {
		return ss, nil
	}
	durable, listed, err := s.archived(ctx, shard)
	if err != nil {
		ss.mu.Unlock()
		return nil, err
	}
	ss.durable = durable
	var objs []objRef
	for _, o := range listed {
		if ss.durable != "" && stream.CompareSeq(o.last, ss.durable) <= 0 {
			objs = append(objs, o)
		}
	}
	sort.Slice(objs, func(i, j int) bool { return stream.CompareSeq(objs[i].first, objs[j].first) < 0 })
	for _, o := range objs {
		n := len(ss.groups)
		if n > 0 && stream.CompareSeq(o.first, ss.groups[n-1].last) <= 0 {
			g := &ss.groups[n-1]
			g.objs = append(g.objs, o)
			g.size += o.size
			if stream.CompareSeq(o.last, g.last) > 0 {
				g.last = o.last
			}
			continue
		}
		ss.groups = append(ss.groups, group{objs: []objRef{o}, last: o.last, size: o.size})
	}
	for _, g := range ss.groups {
		s.archiveBytes.Add(g.size)
	}
	ss.loaded = true
	return ss, nil
}

// SetCap limits what the source serves of shard to records through seq
// (verify compares against the live aggregates at that position). It
// clears the shard's caught-up mark.
func (s *Source) SetCap(ctx context.Context, shard, seq string) error {
	ss, err := s.state(ctx, shard)
	if err != nil {
		return err
	}
	defer ss.mu.Unlock()
	ss.capSeq, ss.capped, ss.caught = seq, true, false
	return nil
}

// Read implements aggregator.Source.
func (s *Source) Read(ctx context.Context, shard, after string, limit int) (stream.Batch, error) {
	ss, err := s.state(ctx, shard)
	if err != nil {
		return stream.Batch{}, err
	}
	defer ss.mu.Unlock()
	if limit <= 0 {
		limit = 1000
	}
	if ss.capped && stream.CompareSeq(after, ss.capSeq) >= 0 {
		ss.caught, ss.tip, ss.inTail = true, ss.capSeq, true
		return stream.Batch{}, nil
	}
	if ss.durable != "" && stream.CompareSeq(after, ss.durable) < 0 {
		b, err := s.readArchive(ctx, ss, after, limit)
		if err != nil || len(b.Records) > 0 {
			return b, err
		}
		// The archive holds nothing more in range before durable.
		if stream.CompareSeq(after, ss.durable) < 0 {
			after = ss.durable
		}
	}
	return s.readStream(ctx, ss, shard, after, limit)
}

// ReadFrom implements aggregator.Source: Read from the record numbered
// from, inclusive, by reading after stream.PrevSeq(from). That is exact in
// the archive, whose records are selected by comparing numbers, and on the
// local log, whose numbers count up by one.
func (s *Source) ReadFrom(ctx context.Context, shard, from string, limit int) (stream.Batch, error) {
	return s.Read(ctx, shard, stream.PrevSeq(from), limit)
}

func (s *Source) readStream(ctx context.Context, ss *shardState, shard, after string, limit int) (stream.Batch, error) {
	ss.inTail = true
	b, err := s.st.Read(ctx, shard, after, limit)
	if err != nil {
		return b, err
	}
	recs := b.Records[:0]
	reachedCap := false
	for _, r := range b.Records {
		if ss.capped && stream.CompareSeq(r.Seq, ss.capSeq) > 0 {
			reachedCap = true
			break
		}
		if s.cfg.From != 0 || s.cfg.To != 0 {
			if e, err := event.Unmarshal(r.Data); err == nil && !s.inRange(e.TS) {
				// An empty record: the aggregator counts it undecodable
				// and skips it, and the position still advances.
				r.Data = nil
			}
		}
		recs = append(recs, r)
		s.count(ss, r.Seq, r.Data != nil)
	}
	b.Records = recs
	last := after
	if len(recs) > 0 {
		last = recs[len(recs)-1].Seq
	}
	if ss.capped {
		if reachedCap || stream.CompareSeq(last, ss.capSeq) >= 0 {
			b.BehindRecords, b.Ended = 0, false
			ss.caught, ss.tip = true, ss.capSeq
		} else if b.BehindRecords == 0 && len(recs) == 0 {
			// The cap is past the stream's tip: cannot happen for a cap
			// read from the live positions, unless the stream lost it.
			b.BehindRecords = 1
		} else if b.BehindRecords == 0 {
			b.BehindRecords = 1 // more to come up to the cap
		}
		return b, nil
	}
	if b.Ended || b.BehindRecords == 0 || (b.BehindRecords < 0 && len(recs) < limit) {
		ss.caught, ss.tip = true, last
	}
	return b, nil
}

func (s *Source) count(ss *shardState, seq string, inRange bool) {
	if stream.CompareSeq(seq, ss.served) > 0 {
		ss.served = seq
		if inRange {
			s.events.Add(1)
		}
	}
}

// readArchive serves records after `after` from the shard's archive
// groups; an empty batch means the archive part is exhausted.
func (s *Source) readArchive(ctx context.Context, ss *shardState, after string, limit int) (stream.Batch, error) {
	// Continue the open merger when the read goes on where the last one
	// stopped; records between mSent and mPos were all out of range.
	if ss.m == nil || (after != ss.mPos && after != ss.mSent) {
		ss.closeMerger()
		g := sort.Search(len(ss.groups), func(i int) bool { return stream.CompareSeq(ss.groups[i].last, after) > 0 })
		if g == len(ss.groups) {
			return stream.Batch{}, nil
		}
		ss.mGroup = g
		ss.m = newMerger(context.WithoutCancel(ctx), s.cfg.Archive, ss.groups[g].objs, after)
		ss.mPos, ss.mSent = after, after
	}
	var recs []stream.Record
	for len(recs) < limit {
		if err := ctx.Err(); err != nil {
			return stream.Batch{}, err
		}
		r, ok, err := ss.m.next()
		if err != nil {
			ss.closeMerger()
			return stream.Batch{}, fmt.Errorf("replay: read archive: %w", err)
		}
		if !ok {
			s.groupDone(ss, ss.mGroup)
			ss.m.close()
			ss.mGroup++
			if ss.mGroup >= len(ss.groups) {
				ss.m = nil
				break
			}
			ss.m = newMerger(context.WithoutCancel(ctx), s.cfg.Archive, ss.groups[ss.mGroup].objs, ss.mPos)
			continue
		}
		if ss.capped && stream.CompareSeq(r.Seq, ss.capSeq) > 0 {
			// r is taken from the merger but not served: start over at
			// the next read, which may come with a higher cap.
			ss.closeMerger()
			break
		}
		ss.mPos = r.Seq
		if !s.inRange(r.Event.TS) {
			continue
		}
		data, err := event.Marshal(&r.Event)
		if err != nil {
			ss.closeMerger()
			return stream.Batch{}, fmt.Errorf("replay: encode archived event %s: %w", r.Event.ID, err)
		}
		recs = append(recs, stream.Record{Seq: r.Seq, Key: r.Event.PartitionKey(), Data: data})
		ss.mSent = r.Seq
		s.count(ss, r.Seq, true)
	}
	return stream.Batch{Records: recs, BehindRecords: -1}, nil
}

func (s *Source) groupDone(ss *shardState, g int) {
	if g >= ss.doneTo {
		for i := ss.doneTo; i <= g && i < len(ss.groups); i++ {
			s.archiveDone.Add(ss.groups[i].size)
		}
		ss.doneTo = g + 1
	}
}

func (ss *shardState) closeMerger() {
	if ss.m != nil {
		ss.m.close()
		ss.m = nil
	}
	ss.mPos, ss.mSent = "", ""
}

// Close releases open archive readers.
func (s *Source) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.shards {
		ss.mu.Lock()
		ss.closeMerger()
		ss.mu.Unlock()
	}
}

// merger yields the records of a group's objects in seq order, skipping
// those at or before after.
type merger struct {
	its   []*objIter
	after string
}

type objIter struct {
	next func() (archive.Record, bool)
	stop func()
	err  *error
	head archive.Record
	ok   bool
}

var errStop = errors.New("replay: stop")

func newMerger(ctx context.Context, store archive.ObjectStore, objs []objRef, after string) *merger {
	m := &merger{after: after}
	for _, o := range objs {
		var err error
		seq := func(yield func(archive.Record) bool) {
			e := archive.ReadObject(ctx, store, o.key, func(r archive.Record) error {
				if !yield(r) {
					return errStop
				}
				return nil
			})
			if e != nil && !errors.Is(e, errStop) {
				err = e
			}
		}
		next, stop := iter.Pull(iter.Seq[archive.Record](seq))
		m.its = append(m.its, &objIter{next: next, stop: stop, err: &err})
	}
	return m
}

func (it *objIter) advance(after string) error {
	for {
		it.head, it.ok = it.next()
		if !it.ok {
			return *it.err
		}
		if stream.CompareSeq(it.head.Seq, after) > 0 {
			return nil
		}
	}
}

// next returns the record with the smallest seq among the heads.
func (m *merger) next() (archive.Record, bool, error) {
	var best *objIter
	for _, it := range m.its {
		if !it.ok && it.next != nil {
			if err := it.advance(m.after); err != nil {
				return archive.Record{}, false, err
			}
			if !it.ok {
				it.stop()
				it.next = nil
			}
		}
		if it.ok && (best == nil || stream.CompareSeq(it.head.Seq, best.head.Seq) < 0) {
			best = it
		}
	}
	if best == nil {
		return archive.Record{}, false, nil
	}
	r := best.head
	best.ok = false
	m.after = r.Seq
	return r, true, nil
}

func (m *merger) close() {
	for _, it := range m.its {
		if it.next != nil {
			it.stop()
			it.next = nil
		}
	}
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
