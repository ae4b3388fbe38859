package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/stream"
)

// ErrFull is returned by Add when a shard already holds
// WriterConfig.MaxPendingBytes of encoded objects: the archiver must Flush
// the shard (recording the boundary first, see the package doc) and then
// add the record again.
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
	// MaxPendingBytes bounds the memory a shard's objects hold before they
	// are written, across all its partitions: their encoded size (Parquet
	// pages, the values of the pages being filled, dictionaries). Default
	// MaxBytes / 4, at least 4 MiB: about twice what an object cut at
	// MaxBytes holds (7 MiB at the peak of one of 64 MiB, BenchmarkWrite's
	// events).
	MaxPendingBytes int64
	// Now gives the time objects are opened, for MaxAge. Default time.Now.
	Now func() time.Time
	// Logger receives one debug line per object and warnings on failed
	// puts; nil means no logging.
	Logger *slog.Logger
	// Registerer receives the writer's metrics; nil means not registered.
	Registerer prometheus.Registerer
}

// Writer encodes the records of stream shards into objects per (shard,
// partition) as they are added, and writes the objects to an ObjectStore
// when flushed. It is safe for concurrent use; Add and Flush of one shard
// are meant to be called from the one goroutine that reads that shard.
type Writer struct {
	store ObjectStore
	cfg   WriterConfig
	log   *slog.Logger
	m     *metrics

	mu     sync.Mutex // guards shards
	shards map[string]*shardBuf
}

// shardBuf is the buffered state of one shard.
type shardBuf struct {
	flushMu sync.Mutex // one Flush of the shard at a time

	mu      sync.Mutex // guards the fields below
	open    map[Partition]*object
	sealed  []*object // cut, waiting for Flush, in the order they were cut
	raw     int64     // raw bytes of the records in open and sealed
	pending int64     // encoded bytes held for open and sealed (object.held)
	last    string    // last seq added
	durable string    // every record through this seq is in the store
}

// object is one archive object being assembled. Its rows go to enc as they
// arrive; a Flush closes enc into body and writes it.
type object struct {
	part   Partition
	enc    *encoder // nil once closed
	body   []byte   // the whole object, once closed
	first  string   // seqs of the first and last records, once closed
	last   string
	n      int       // records, once closed
	raw    int64     // raw bytes of the records
	held   int64     // encoded bytes counted in shardBuf.pending
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
		cfg.MaxPendingBytes = max(cfg.MaxBytes/4, 4<<20)
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

// Add encodes one record of shard into its object: rec is the record's
// bytes as read from the stream (its length is what MaxBytes counts), ev
// the event decoded from it; neither is kept. The event goes to the object
// of its receive hour (rt), so the objects a flush writes depend on how long
// the records took to arrive, not on the ts a client sent. Seqs of a shard
// must rise from call to call. When the object reaches MaxBytes it is cut
// (sealed) and waits for Flush; Add never writes to the store. It returns
// ErrFull, adding nothing, when the shard holds MaxPendingBytes.
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

	sb := w.shard(shard, true)
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if stream.CompareSeq(seq, sb.last) <= 0 {
		return fmt.Errorf("archive add shard %s: seq %s not after %s", shard, seq, sb.last)
	}
	// Encoded sizes depend only on the records added since the last
	// Flush, so a rebuild from the checkpoint is refused at the same record.
	if sb.pending >= w.cfg.MaxPendingBytes {
		return fmt.Errorf("archive add shard %s seq %s: %w", shard, seq, ErrFull)
	}
	p := PartitionOf(receiveTime(&ev))
	o := sb.open[p]
	if o == nil {
		o = &object{part: p, enc: newEncoder(shard, seq), opened: w.cfg.Now()}
		sb.open[p] = o
	}
	if err := o.enc.write(&r); err != nil {
		return fmt.Errorf("archive add shard %s: %w", shard, err)
	}
	o.raw += size
	sb.raw += size
	sb.last = seq
	held := o.enc.size()
	sb.pending += held - o.held
	w.m.pending.Add(float64(held - o.held))
	o.held = held
	// The cut depends only on the records since the last Flush, never on
	// time, so a rebuild from the checkpoint cuts at the same records.
	if o.raw >= w.cfg.MaxBytes {
		sb.sealed = append(sb.sealed, o)
		delete(sb.open, p)
	}
	return nil
}

// shard returns the state of shard, made when missing if create.
func (w *Writer) shard(shard string, create bool) *shardBuf {
	w.mu.Lock()
	defer w.mu.Unlock()
	sb := w.shards[shard]
	if sb == nil && create {
		sb = &shardBuf{open: make(map[Partition]*object)}
		w.shards[shard] = sb
	}
	return sb
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
	sb := w.shard(shard, false)
	if sb == nil {
		return ""
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.last
}

// Due lists, sorted, the shards that should be flushed now: those with a
// cut object, an object whose first record was added MaxAge or more before
// now, or MaxBytes or more raw buffered across partitions.
func (w *Writer) Due(now time.Time) []string {
	w.mu.Lock()
	shards := make(map[string]*shardBuf, len(w.shards))
	maps.Copy(shards, w.shards)
	w.mu.Unlock()
	var due []string
	for id, sb := range shards {
		if sb.due(now, w.cfg) {
			due = append(due, id)
		}
	}
	sort.Strings(due)
	return due
}

func (sb *shardBuf) due(now time.Time, cfg WriterConfig) bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if len(sb.sealed) > 0 || sb.raw >= cfg.MaxBytes {
		return true
	}
	for _, o := range sb.open {
		if now.Sub(o.opened) >= cfg.MaxAge {
			return true
		}
	}
	return false
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
	sb := w.shard(shard, false)
	if sb == nil {
		return "", nil
	}
	sb.flushMu.Lock()
	defer sb.flushMu.Unlock()

	objs, through, durable := sb.take()
	if len(objs) == 0 {
		return durable, nil
	}
	w.m.perFlush.Observe(float64(len(objs)))
	start := time.Now()
	for i, o := range objs {
		if err := w.put(ctx, shard, o); err != nil {
			sb.mu.Lock()
			sb.sealed = append(objs[i:len(objs):len(objs)], sb.sealed...)
			sb.mu.Unlock()
			return durable, err
		}
		sb.mu.Lock()
		sb.raw -= o.raw
		sb.pending -= o.held
		sb.mu.Unlock()
		w.m.pending.Sub(float64(o.held))
	}
	w.m.flush.Observe(time.Since(start).Seconds())

	sb.mu.Lock()
	defer sb.mu.Unlock()
	if stream.CompareSeq(through, sb.durable) > 0 {
		sb.durable = through
	}
	return sb.durable, nil
}

// take cuts the open objects and hands every cut one to Flush, in the order
// they were cut, then the open ones by partition; with them the seq they
// run through and the durable seq before them.
func (sb *shardBuf) take() (objs []*object, through, durable string) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	objs = sb.sealed
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
	return objs, sb.last, sb.durable
}

// put closes (once) and writes one object. The body is kept until it is
// written, so a failed put is retried without encoding again.
func (w *Writer) put(ctx context.Context, shard string, o *object) error {
	if o.body == nil {
		body, err := o.enc.close()
		if err != nil {
			return fmt.Errorf("archive flush shard %s: %w", shard, err)
		}
		o.body, o.first, o.last, o.n = body, o.enc.first, o.enc.last, o.enc.n
		o.enc = nil
	}
	key := ObjectKey(o.part, shard, o.first, o.last)
	meta := map[string]string{"records": strconv.Itoa(o.n), "first-seq": o.first, "last-seq": o.last}
	created, err := w.store.PutIfAbsent(ctx, key, o.body, ContentType, meta)
	if err != nil {
		w.m.putErrors.Inc()
		w.log.Warn("archive put failed", "shard", shard, "key", key, "err", err)
		return fmt.Errorf("archive flush shard %s: %w", shard, err)
	}
	if created {
		w.m.created.Inc()
		w.m.records.Add(float64(o.n))
		w.m.bytes.Add(float64(len(o.body)))
	} else {
		w.m.existed.Inc()
	}
	w.log.Debug("archive object", "key", key, "records", o.n, "bytes", len(o.body), "created", created)
	o.body = nil
	return nil
}

// Drop forgets the buffered records of shard without writing them, for an
// archiver that lost the shard's lease: the next owner rebuilds the same
// objects from the checkpoint.
func (w *Writer) Drop(shard string) {
	sb := w.shard(shard, false)
	if sb == nil {
		return
	}
	sb.flushMu.Lock() // let a running Flush finish its accounting
	defer sb.flushMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.shards[shard] == sb {
		sb.mu.Lock()
		w.m.pending.Sub(float64(sb.pending))
		sb.mu.Unlock()
		delete(w.shards, shard)
	}
}
