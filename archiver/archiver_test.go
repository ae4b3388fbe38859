package archiver

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/stream"
)

// run starts a on its own and returns a stop function that cancels it
// and waits for Run to return.
func run(t *testing.T, a *Archiver) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// TestArchive archives events put before and while the archiver runs and
// checks the archive holds each exactly once, and the metrics.
func TestArchive(t *testing.T) {
	for _, tc := range testStores(t) {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 1)
			store := tc.store(t)
			reg := prometheus.NewRegistry()
			cfg := testConfig()
			cfg.Registerer = reg
			a := New(e.log, store, e.ck, cfg)
			e.put(t, 750)
			stop := run(t, a)
			e.put(t, 750)
			e.waitCaughtUp(t, "archive caught up")
			// Gathered while running: lag covers only shards being archived.
			// A shard updates its metrics after its checkpoint, so they
			// settle a moment after the catch-up the checkpoints show.
			var mfs []*dto.MetricFamily
			waitFor(t, "metrics caught up", func() bool {
				var err error
				if mfs, err = reg.Gather(); err != nil {
					t.Fatal(err)
				}
				return metricsSettled(mfs, len(e.sent))
			})
			stop()
			checkArchive(t, store, e.sent)
			objs, _ := store.List(context.Background(), "")
			var created, events float64
			lags := 0
			for _, mf := range mfs {
				switch mf.GetName() {
				case "pulse_archive_objects_total":
					for _, m := range mf.GetMetric() {
						if m.GetLabel()[0].GetValue() == "created" {
							created = m.GetCounter().GetValue()
						}
					}
				case "pulse_archive_events_total":
					events = mf.GetMetric()[0].GetCounter().GetValue()
				case "pulse_archive_lag_seconds":
					for _, m := range mf.GetMetric() {
						lags++
						if v := m.GetGauge().GetValue(); v != 0 {
							t.Errorf("lag of %s = %v after catching up, want 0", m.GetLabel()[0].GetValue(), v)
						}
					}
				}
			}
			if created != float64(len(objs)) {
				t.Errorf("objects created = %v, store holds %d", created, len(objs))
			}
			if events != float64(len(e.sent)) {
				t.Errorf("pulse_archive_events_total = %v, want %d (one run, no restart)", events, len(e.sent))
			}
			if lags != 4 {
				t.Errorf("lag exported for %d shards, want 4", lags)
			}
		})
	}
}

// metricsSettled says whether every exported lag is 0 and the archived
// events number n.
func metricsSettled(mfs []*dto.MetricFamily, n int) bool {
	events := 0.0
	for _, mf := range mfs {
		switch mf.GetName() {
		case "pulse_archive_events_total":
			events = mf.GetMetric()[0].GetCounter().GetValue()
		case "pulse_archive_lag_seconds":
			for _, m := range mf.GetMetric() {
				if m.GetGauge().GetValue() != 0 {
					return false
				}
			}
		}
	}
	return events == float64(n)
}

// blockingStore holds every put until released, telling which key waits.
type blockingStore struct {
	archive.ObjectStore
	waiting chan string
	release chan struct{}
}

func (b *blockingStore) PutIfAbsent(ctx context.Context, key string, body []byte, ct string, meta map[string]string) (bool, error) {
	select {
	case b.waiting <- key:
	default:
	}
	select {
	case <-b.release:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return b.ObjectStore.PutIfAbsent(ctx, key, body, ct, meta)
}

// TestLag checks that a shard whose flush cannot complete shows the age of
// its oldest record, and 0 once it is durable.
func TestLag(t *testing.T) {
	e := newEnv(t, 2)
	bs := &blockingStore{ObjectStore: archive.NewDir(t.TempDir()), waiting: make(chan string, 1), release: make(chan struct{})}
	cfg := testConfig()
	// Record arrival times come from the real clock: an hour ahead, every
	// record read is at least an hour old.
	cfg.Now = func() time.Time { return time.Now().Add(time.Hour) }
	a := New(e.log, bs, e.ck, cfg)
	e.put(t, 200)
	stop := run(t, a)
	key := <-bs.waiting
	k, err := archive.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if l := a.Lag()[k.Shard]; l < time.Hour {
		t.Errorf("lag of shard %s with a flush blocked = %v, want >= 1h", k.Shard, l)
	}
	close(bs.release)
	e.waitCaughtUp(t, "archive caught up")
	waitFor(t, "lag 0", func() bool {
		for _, l := range a.Lag() {
			if l != 0 {
				return false
			}
		}
		return true
	})
	stop()
	checkArchive(t, bs.ObjectStore, e.sent)
}

// TestStop checks that cancelling Run flushes what is buffered: with a
// MaxAge of an hour and big objects nothing is written before the stop.
func TestStop(t *testing.T) {
	e := newEnv(t, 3)
	store := archive.NewDir(t.TempDir())
	cfg := testConfig()
	cfg.MaxAge = time.Hour
	cfg.Writer = archive.WriterConfig{}
	// The stop's flush bound is not what this test checks: under -race on a
	// loaded machine a flush of three objects (Zstd set-up) neared the
	// default 10 s.
	cfg.StopTimeout = time.Minute
	a := New(e.log, store, e.ck, cfg)
	e.put(t, 400)
	stop := run(t, a)
	shards, _ := e.log.Shards(context.Background())
	waitFor(t, "every record read", func() bool {
		for _, s := range shards {
			if a.w.Last(s.ID) != e.log.Tip(s.ID) {
				return false
			}
		}
		return true
	})
	if objs, _ := store.List(context.Background(), ""); len(objs) != 0 {
		t.Fatalf("%d objects written before the stop, want 0", len(objs))
	}
	stop()
	if !e.caughtUp(t) {
		t.Error("checkpoints not at the tips after a graceful stop")
	}
	checkArchive(t, store, e.sent)
}

// memSource is a resharded stream: closed parents, open children. It
// records the order of first reads and ends, to check a child starts only
// after its parents ended.
type memSource struct {
	shards []stream.Shard
	recs   map[string][]stream.Record

	mu     sync.Mutex
	events []string
}

func (m *memSource) Shards(ctx context.Context) ([]stream.Shard, error) { return m.shards, nil }

func (m *memSource) Read(ctx context.Context, shard, after string, limit int) (stream.Batch, error) {
	recs := m.recs[shard]
	i, _ := slices.BinarySearchFunc(recs, after, func(r stream.Record, s string) int { return stream.CompareSeq(r.Seq, s) })
	if i < len(recs) && recs[i].Seq == after {
		i++
	}
	out := recs[i:min(i+limit, len(recs))]
	closed := false
	for _, s := range m.shards {
		if s.ID == shard {
			closed = s.Closed
		}
	}
	b := stream.Batch{Records: out, Ended: closed && i+len(out) == len(recs)}
	m.mu.Lock()
	if after == "" && !slices.Contains(m.events, "read "+shard) {
		m.events = append(m.events, "read "+shard)
	}
	if b.Ended && !slices.Contains(m.events, "ended "+shard) {
		m.events = append(m.events, "ended "+shard)
	}
	m.mu.Unlock()
	if len(out) == 0 && !b.Ended {
		select {
		case <-ctx.Done():
			return stream.Batch{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return b, nil
}

func TestReshard(t *testing.T) {
	e := newEnv(t, 4) // for Redis and the event generator
	src := &memSource{
		shards: []stream.Shard{
			{ID: "p1", Closed: true},
			{ID: "p2", Closed: true},
			{ID: "c1", Parents: []string{"p1", "p2"}},
			{ID: "c2", Parents: []string{"p2"}},
		},
		recs: map[string][]stream.Record{},
	}
	for i, s := range src.shards {
		for n := range 80 + 40*i {
			ev := event.Event{ID: s.ID + "-" + strconv.Itoa(n), Site: "demo", Type: "pageview",
				TS: start.UnixMilli() + int64(n)*60_000, RT: start.UnixMilli()}
			data, _ := event.Marshal(&ev)
			src.recs[s.ID] = append(src.recs[s.ID], stream.Record{Seq: strconv.Itoa(1000 + n*7), Data: data, Arrival: time.Now()})
			e.sent[ev.ID] = summary(&ev)
		}
	}
	store := archive.NewDir(t.TempDir())
	a := New(src, store, e.ck, testConfig())
	stop := run(t, a)
	waitFor(t, "children archived", func() bool {
		for _, s := range []string{"c1", "c2"} {
			c, _ := e.ck.Load(context.Background(), s)
			recs := src.recs[s]
			if c.Durable != recs[len(recs)-1].Seq {
				return false
			}
		}
		return true
	})
	stop()
	checkArchive(t, store, e.sent)
	src.mu.Lock()
	defer src.mu.Unlock()
	pos := func(ev string) int {
		i := slices.Index(src.events, ev)
		if i < 0 {
			t.Fatalf("%q never happened: %v", ev, src.events)
		}
		return i
	}
	for _, s := range src.shards {
		for _, p := range s.Parents {
			if pos("read "+s.ID) < pos("ended "+p) {
				t.Errorf("shard %s read before its parent %s ended: %v", s.ID, p, src.events)
			}
		}
	}
	if _, ok := a.Lag()["p1"]; ok {
		t.Error("ended shard p1 still reported in Lag")
	}
}
