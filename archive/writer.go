package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/stream"
)

// ErrFull is returned by Add when a shard already buffers
// WriterConfig.MaxPendingBytes: the archiver must Flush the shard (recording
// the boundary first, see the package doc) and then add the record again.
var ErrFull = errors.New("archive: shard buffer full, flush first")

// WriterConfig configures a Writer. Zero values mean the defaults.
type WriterConfig struct {
	// MaxBytes is the raw size (sum of the stream records' bytes) at which
	// an object is cut. Default 64 MiB, which makes objects of roughly
	// 5-15 MiB of Parquet: large enough for engines to scan efficiently.
	MaxBytes int64
	// MaxAge is how long the oldest buffered record of an object may wait
	// before Due reports its shard. Default 5 minutes.
	MaxAge time.Duration
	// MaxPendingBytes bounds the raw bytes buffered per shard, across all
	// its partitions (late events open many). Default 4 * MaxBytes.
	MaxPendingBytes int64
	// Now gives the time objects are opened, for MaxAge. Default time.Now.
	Now func() time.Time
	// Logger receives one debug line per object and warnings on failed
	// puts; nil means no logging.
	Logger *slog.Logger
	// Registerer receives the writer's metrics; nil means not registered.
	Registerer prometheus.Registerer
}

// Writer buffers the records of stream shards into objects per (shard,
// partition) and writes them to an ObjectStore. It is safe for concurrent
// use; Add and Flush of one shard are meant to be called from the one
// goroutine that reads that shard.
type Writer struct {
	store ObjectStore
	cfg   WriterConfig
	log   *slog.Logger
	m     *metrics

	mu     sync.Mutex
	shards map[string]*shardBuf
}

// shardBuf is the buffered state of one shard. Fields other than flushMu are
// guarded by Writer.mu.
type shardBuf struct {
	flushMu sync.Mutex // one Flush of the shard at a time

	open    map[Partition]*object
	sealed  []*object // cut, waiting for Flush, in the order they were cut
	pending int64     // raw bytes in open and sealed
	last    string    // last seq added
	durable string    // every record through this seq is in the store
}

// object is the content of one archive object being assembled.
type object struct {
	part   Partition
	rows   []row
	bytes  int64     // raw bytes of the records
	opened time.Time // Now when the first record arrived
}

// NewWriter returns a writer into store.
func NewWriter(store ObjectStore, cfg WriterConfig) *Writer {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 5 * time.Minute
	}
	if cfg.MaxPendingBytes <= 0 {
		cfg.MaxPendingBytes = 4 * cfg.MaxBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Writer{
		store:  store,
		cfg:    cfg,
		log:    log,
		m:      newMetrics(cfg.Registerer),
		shards: make(map[string]*shardBuf),
	}
}

// Add buffers one record of shard: rec is the record's bytes as read from
// the stream (its length is what MaxBytes counts), ev the event decoded from
// it. The event goes to the object of its receive hour (rt), so the
// objects a flush writes depend on how long the records took to arrive, not
// on the ts a client sent. Seqs of a shard
// must rise from call to call. When the object reaches MaxBytes it is cut
// (sealed) and waits for Flush; Add never writes to the store.
func (w *Writer) Add(shard, seq string, rec []byte, ev event.Event) error {
	if err := checkShard(shard); err != nil {
		return fmt.Errorf("archive add: %w", err)
	}
	if err := checkSeq(seq); err != nil {
		return fmt.Errorf("archive add shard %s: %w", shard, err)
	}
	r, err := toRow(shard, seq, &ev)
	if err != nil {
		return fmt.Errorf("archive add shard %s seq %s: %w", shard, seq, err)
	}
	size := int64(len(rec))
	if size == 0 {
		size = rawEstimate(&r)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	sb := w.shards[shard]
	if sb == nil {
		sb = &shardBuf{open: make(map[Partition]*object)}
		w.shards[shard] = sb
	}
	if stream.CompareSeq(seq, sb.last) <= 0 {
		return fmt.Errorf("archive add shard %s: seq %s not after %s", shard, seq, sb.last)
	}
	if sb.pending > 0 && sb.pending+size > w.cfg.MaxPendingBytes {
		return fmt.Errorf("archive add shard %s seq %s: %w", shard, seq, ErrFull)
	}
	p := PartitionOf(receiveTime(&ev))
	o := sb.open[p]
	if o == nil {
		o = &object{part: p, opened: w.cfg.Now()}
		sb.open[p] = o
	}
	o.rows = append(o.rows, r)
	o.bytes += size
	sb.pending += size
	sb.last = seq
	w.m.pending.Add(float64(size))
	// The cut depends only on the records since the last Flush, never on
	// time, so a rebuild from the checkpoint cuts at the same records.
	if o.bytes >= w.cfg.MaxBytes {
		sb.sealed = append(sb.sealed, o)
		delete(sb.open, p)
	}
	return nil
}

// receiveTime is the time an event is partitioned by: its rt, or its ts for
// a record without one (written before ingest stamped rt; none are known).
func receiveTime(ev *event.Event) int64 {
	if ev.RT != 0 {
		return ev.RT
	}
	return ev.TS
}

// rawEstimate sizes a record when the caller has no stream bytes at hand.
func rawEstimate(r *row) int64 {
	return int64(96 + len(r.ID) + len(r.Site) + len(r.Type) + len(str(r.URL)) + len(str(r.Ref)) +
		len(str(r.UID)) + len(str(r.Path)) + len(str(r.RefHost)) + len(str(r.Device)) + len(str(r.Props)) +
		len(str(r.Source)) + len(str(r.Browser)) + len(str(r.OS)) + len(str(r.Country)) + 32)
}

// Last is the seq of the last record added for shard ("" when none): the
// flush boundary the archiver records in its checkpoint before calling Flush.
func (w *Writer) Last(shard string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if sb := w.shards[shard]; sb != nil {
		return sb.last
	}
	return ""
}

// Due lists, sorted, the shards that should be flushed now: those with a
// cut object, an object whose first record was added MaxAge or more before
// now, or MaxBytes or more buffered across partitions.
func (w *Writer) Due(now time.Time) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var due []string
	for id, sb := range w.shards {
		if len(sb.sealed) > 0 || sb.pending >= w.cfg.MaxBytes {
			due = append(due, id)
			continue
		}
		for _, o := range sb.open {
			if now.Sub(o.opened) >= w.cfg.MaxAge {
				due = append(due, id)
				break
			}
		}
	}
	sort.Strings(due)
	return due
}

// Flush writes every buffered object of shard (open objects are cut here)
// and returns the seq through which every record of the shard added so far
// is in the store: the archiver's new checkpoint. On error it returns the
// previous such seq; the objects not written stay buffered, and the
// archiver must call Flush again (or restart from its checkpoint) before
// adding more records, so that the cut stays where it recorded it. A writer
// knows only the records added to it: with none added since it was made it
// returns "", which means "no change" to the caller's checkpoint.
func (w *Writer) Flush(ctx context.Context, shard string) (string, error) {
	w.mu.Lock()
	sb := w.shards[shard]
	w.mu.Unlock()
	if sb == nil {
		return "", nil
	}
	sb.flushMu.Lock()
	defer sb.flushMu.Unlock()

	w.mu.Lock()
	objs := sb.sealed
	parts := make([]Partition, 0, len(sb.open))
	for p := range sb.open {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		objs = append(objs, sb.open[p])
	}
	sb.sealed = nil
	clear(sb.open)
	through, durable := sb.last, sb.durable
	w.mu.Unlock()

	if len(objs) == 0 {
		return durable, nil
	}
	w.m.perFlush.Observe(float64(len(objs)))
	start := time.Now()
	for i, o := range objs {
		if err := w.put(ctx, shard, o); err != nil {
			w.mu.Lock()
			sb.sealed = append(objs[i:len(objs):len(objs)], sb.sealed...)
			w.mu.Unlock()
			return durable, err
		}
		w.mu.Lock()
		sb.pending -= o.bytes
		w.mu.Unlock()
		w.m.pending.Sub(float64(o.bytes))
	}
	w.m.flush.Observe(time.Since(start).Seconds())

	w.mu.Lock()
	defer w.mu.Unlock()
	if stream.CompareSeq(through, sb.durable) > 0 {
		sb.durable = through
	}
	return sb.durable, nil
}

// put encodes and writes one object.
func (w *Writer) put(ctx context.Context, shard string, o *object) error {
	first, last := o.rows[0].Seq, o.rows[len(o.rows)-1].Seq
	key := ObjectKey(o.part, shard, first, last)
	body, err := encodeObject(o.rows)
	if err != nil {
		return fmt.Errorf("archive flush shard %s object %s: %w", shard, key, err)
	}
	meta := map[string]string{"records": strconv.Itoa(len(o.rows)), "first-seq": first, "last-seq": last}
	created, err := w.store.PutIfAbsent(ctx, key, body, ContentType, meta)
	if err != nil {
		w.m.putErrors.Inc()
		w.log.Warn("archive put failed", "shard", shard, "key", key, "err", err)
		return fmt.Errorf("archive flush shard %s: %w", shard, err)
	}
	if created {
		w.m.created.Inc()
		w.m.records.Add(float64(len(o.rows)))
		w.m.bytes.Add(float64(len(body)))
	} else {
		w.m.existed.Inc()
	}
	w.log.Debug("archive object", "key", key, "records", len(o.rows), "bytes", len(body), "created", created)
	return nil
}

// Drop forgets the buffered records of shard without writing them, for an
// archiver that lost the shard's lease: the next owner rebuilds the same
// objects from the checkpoint.
func (w *Writer) Drop(shard string) {
	w.mu.Lock()
	sb := w.shards[shard]
	w.mu.Unlock()
	if sb == nil {
		return
	}
	sb.flushMu.Lock() // let a running Flush finish its accounting
	defer sb.flushMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.shards[shard] == sb {
		w.m.pending.Sub(float64(sb.pending))
		delete(w.shards, shard)
	}
}
