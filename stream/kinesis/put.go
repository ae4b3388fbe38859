package kinesis

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/pulsehq/pulse/stream"
	"github.com/pulsehq/pulse/stream/kpl"
)

// PutResult says where one entry was stored: the shard and the entry's
// position (see the package's position format), which Read orders and
// resumes from.
type PutResult struct{ Shard, Seq string }

// EntryError is the failure of one entry of a Put.
type EntryError struct {
	Index int
	Err   error
}

// PutError lists the entries of a Put that were not stored; every other
// entry was, and its PutResult is filled. errors.Is sees through it to the
// causes (ErrRecordTooLarge, ErrInvalidKey, ErrClosed, ...).
type PutError struct{ Failed []EntryError }

func (e *PutError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kinesis put: %d entries failed", len(e.Failed))
	for i, f := range e.Failed {
		if i == 3 {
			b.WriteString("; ...")
			break
		}
		fmt.Fprintf(&b, "; entry %d: %v", f.Index, f.Err)
	}
	return b.String()
}

func (e *PutError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}

// putCall is one Put waiting for its entries.
type putCall struct {
	results []PutResult
	errs    []error
	pending atomic.Int64
	done    chan struct{}
}

func (c *putCall) finish(i int, r PutResult, err error) {
	c.results[i], c.errs[i] = r, err
	if c.pending.Add(-1) == 0 {
		close(c.done)
	}
}

// item is one entry in the producer's buffer.
type item struct {
	call *putCall
	i    int
	key  string
	data []byte
}

// record is one Kinesis record to put: a plain entry, or entries aggregated.
type record struct {
	shard string // shard the record was packed for; "" for plain records
	key   string // partition key of the Kinesis record
	ehk   string // explicit hash key, set for aggregated records
	items []item
	agg   *kpl.Builder // nil for a plain record
	data  []byte       // set when the record is sealed
	size  int          // data plus partition key bytes
}

// Put sends entries to Kinesis and returns once every one is stored or has
// failed. Entries with the same key go to the same shard. When some entries
// fail, the error is a *PutError naming them and the results of the others
// are filled; when Put returns another error (ErrBackpressure, ErrClosed,
// ctx done), no result is known: entries may or may not have been stored,
// so retry them all. Put does not block on a full buffer: it fails at once
// with ErrBackpressure.
func (s *Stream) Put(ctx context.Context, entries []stream.Entry) ([]PutResult, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	call := &putCall{
		results: make([]PutResult, len(entries)),
		errs:    make([]error, len(entries)),
		done:    make(chan struct{}),
	}
	valid := 0
	for i, e := range entries {
		if err := checkEntry(e); err != nil {
			call.errs[i] = fmt.Errorf("entry %d: %w", i, err)
			s.m.putFailures.WithLabelValues("invalid").Inc()
			continue
		}
		valid++
	}
	if valid > s.cfg.MaxBuffered {
		return nil, fmt.Errorf("kinesis put: %d entries in one Put, more than MaxBuffered (%d)", valid, s.cfg.MaxBuffered)
	}
	call.pending.Store(int64(valid))
	if valid > 0 {
		if err := s.enqueue(call, entries); err != nil {
			return nil, err
		}
		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("kinesis put: %w", ctx.Err())
		}
	}
	var failed []EntryError
	for i, err := range call.errs {
		if err != nil {
			failed = append(failed, EntryError{Index: i, Err: err})
		}
	}
	if failed != nil {
		return call.results, &PutError{Failed: failed}
	}
	return call.results, nil
}

func checkEntry(e stream.Entry) error {
	if e.Key == "" || utf8.RuneCountInString(e.Key) > maxKeyRunes {
		return fmt.Errorf("%w: key of %d bytes", ErrInvalidKey, len(e.Key))
	}
	if n := len(e.Key) + len(e.Data); n > maxRecordBytes {
		return fmt.Errorf("%w: %d bytes of data and key, at most %d", ErrRecordTooLarge, n, maxRecordBytes)
	}
	return nil
}

// enqueue reserves buffer room for the call's valid entries and adds them.
func (s *Stream) enqueue(call *putCall, entries []stream.Entry) error {
	n := call.pending.Load()
	if s.buffered.Add(n) > int64(s.cfg.MaxBuffered) {
		s.buffered.Add(-n)
		s.m.backpressure.Inc()
		return ErrBackpressure
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.buffered.Add(-n)
		return ErrClosed
	}
	if s.firstAt.IsZero() {
		s.firstAt = time.Now()
	}
	m := s.shards.Load()
	for i, e := range entries {
		if call.errs[i] != nil {
			continue
		}
		it := item{call: call, i: i, key: e.Key, data: e.Data}
		shard := ""
		if !s.cfg.NoAggregation {
			shard = m.lookup(hashOf(e.Key))
		}
		if shard == "" {
			s.pushReady(&record{key: e.Key, items: []item{it}, size: len(e.Key) + len(e.Data)})
			continue
		}
		s.addToAggregate(shard, it)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// addToAggregate packs it into the open record of its shard, sealing that
// record first when it would pass the size or count cap. Callers hold mu.
func (s *Stream) addToAggregate(shard string, it item) {
	kr := kpl.Record{PartitionKey: it.key, Data: it.data}
	r := s.open[shard]
	if r != nil && (r.agg.Len() >= s.cfg.MaxAggregateCount || r.agg.SizeWith(kr)+len(r.key) > s.cfg.MaxAggregateBytes) {
		s.seal(shard)
		r = nil
	}
	if r == nil {
		// The record's explicit hash key is its first entry's own hash, so
		// it lands on the shard the map chose, as every entry packed with it.
		r = &record{shard: shard, key: it.key, ehk: hashOf(it.key).String(), agg: &kpl.Builder{}}
		s.open[shard] = r
	}
	r.agg.Add(kr)
	r.items = append(r.items, it)
}

// seal moves the open record of shard to the ready queue. Callers hold mu.
func (s *Stream) seal(shard string) {
	r := s.open[shard]
	delete(s.open, shard)
	if len(r.items) == 1 {
		// One entry goes as a plain record: smaller, and readable by any
		// consumer. Its own key hashes to the same shard.
		it := r.items[0]
		r = &record{key: it.key, items: r.items, size: len(it.key) + len(it.data)}
	} else {
		r.size = r.agg.Size() + len(r.key)
	}
	s.pushReady(r)
}

func (s *Stream) pushReady(r *record) {
	s.ready = append(s.ready, r)
	s.readyN += r.size
}

// takeCall removes the records of one PutRecords call from the head of the
// ready queue. Callers hold mu.
func (s *Stream) takeCall() []*record {
	n, bytes := 0, 0
	for n < len(s.ready) && n < maxCallRecords && bytes+s.ready[n].size <= maxCallBytes {
		bytes += s.ready[n].size
		n++
	}
	call := make([]*record, n)
	copy(call, s.ready)
	rest := copy(s.ready, s.ready[n:])
	clear(s.ready[rest:])
	s.ready = s.ready[:rest]
	s.readyN -= bytes
	return call
}

// fullCall reports whether the ready queue holds a full PutRecords call.
func (s *Stream) fullCall() bool {
	return len(s.ready) >= maxCallRecords || s.readyN >= maxCallBytes
}

// takeAll seals every open record and returns everything buffered.
// Callers hold mu.
func (s *Stream) takeAll() []*record {
	for shard := range s.open {
		s.seal(shard)
	}
	all := s.ready
	s.ready, s.readyN, s.firstAt = nil, 0, time.Time{}
	return all
}

// fail finishes every entry of r with err.
func (s *Stream) fail(r *record, err error, reason string) {
	s.m.putFailures.WithLabelValues(reason).Add(float64(len(r.items)))
	for _, it := range r.items {
		it.call.finish(it.i, PutResult{}, err)
	}
	s.buffered.Add(-int64(len(r.items)))
}

// succeed finishes every entry of r as stored at seq in shard.
func (s *Stream) succeed(r *record, shard, seq string) {
	last := len(r.items) - 1
	for j, it := range r.items {
		it.call.finish(it.i, PutResult{Shard: shard, Seq: position(seq, j, j == last)}, nil)
	}
	s.buffered.Add(-int64(len(r.items)))
}

// encode encodes an aggregated record's data, outside mu.
func (r *record) encode() error {
	if r.data != nil {
		return nil
	}
	if r.agg == nil {
		r.data = r.items[0].data
		if r.data == nil {
			r.data = []byte{}
		}
		return nil
	}
	b, err := r.agg.Encode()
	if err != nil {
		return err
	}
	r.data, r.agg = b, nil
	return nil
}
