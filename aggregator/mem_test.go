package aggregator

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/stream"
)

// memSource is an in-memory stream for tests, with injected read errors
// and reads that return fewer records than asked, to vary batch splits.
type memSource struct {
	mu      sync.Mutex
	rng     *rand.Rand
	shards  []stream.Shard
	records map[string][]stream.Record
	failP   float64 // probability of a read error
	full    bool    // reads return limit records when there are (no random splits)
}

func newMemSource(seed uint64, shards ...stream.Shard) *memSource {
	return &memSource{rng: rand.New(rand.NewPCG(seed, 1)), shards: shards, records: map[string][]stream.Record{}}
}

func (s *memSource) put(shard string, data []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := strconv.Itoa(len(s.records[shard]) + 1)
	s.records[shard] = append(s.records[shard], stream.Record{Seq: seq, Data: data, Arrival: time.Now()})
	return seq
}

func (s *memSource) Shards(ctx context.Context) ([]stream.Shard, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]stream.Shard(nil), s.shards...), nil
}

func (s *memSource) Read(ctx context.Context, shard, after string, limit int) (stream.Batch, error) {
	s.mu.Lock()
	if s.rng.Float64() < s.failP {
		s.mu.Unlock()
		return stream.Batch{}, errors.New("injected read error")
	}
	recs := s.records[shard]
	i := 0
	if after != "" {
		n, err := strconv.Atoi(after)
		if err != nil || n > len(recs) {
			s.mu.Unlock()
			return stream.Batch{}, fmt.Errorf("bad after %q", after)
		}
		i = n
	}
	if !s.full {
		limit = 1 + s.rng.IntN(limit)
	}
	end := min(i+limit, len(recs))
	closed := false
	for _, sh := range s.shards {
		if sh.ID == shard {
			closed = sh.Closed
		}
	}
	b := stream.Batch{Records: append([]stream.Record(nil), recs[i:end]...), BehindRecords: int64(len(recs) - end)}
	b.Ended = closed && end == len(recs)
	s.mu.Unlock()
	if len(b.Records) == 0 && !b.Ended {
		select {
		case <-time.After(2 * time.Millisecond):
		case <-ctx.Done():
			return stream.Batch{}, ctx.Err()
		}
	}
	return b, nil
}

// ReadFrom reads from the record numbered from: the numbers count up by one.
func (s *memSource) ReadFrom(ctx context.Context, shard, from string, limit int) (stream.Batch, error) {
	return s.Read(ctx, shard, stream.PrevSeq(from), limit)
}

// memStore is an in-memory aggregate store with the redisagg contract
// (overlapping commits refused, applied ones skipped), and injected
// failures before and after the apply lands.
type memStore struct {
	mu        sync.Mutex
	rng       *rand.Rand
	pos       map[string]metric.Position
	ended     map[string]bool
	counts    map[metric.CountKey]int64
	samples   map[metric.CountKey]int64
	uniques   map[metric.UniqueKey]map[string]struct{}
	failP     float64 // probability of an error before applying
	lostP     float64 // probability of an error after applying (lost reply)
	applied   int
	overlaps  int
	redeliver int
	failed    int
	lost      int
	order     []string // shard of each applied commit
}

func newMemStore(seed uint64) *memStore {
	return &memStore{rng: rand.New(rand.NewPCG(seed, 2)), pos: map[string]metric.Position{}, ended: map[string]bool{},
		counts: map[metric.CountKey]int64{}, samples: map[metric.CountKey]int64{}, uniques: map[metric.UniqueKey]map[string]struct{}{}}
}

func (s *memStore) Position(ctx context.Context, shard string) (metric.Position, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos[shard], nil
}

// Pending is always "": an apply here lands whole or not at all.
func (s *memStore) Pending(ctx context.Context, shard string) (string, error) {
	return "", nil
}

func (s *memStore) End(ctx context.Context, shard string, fence int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended[shard] = true
	return nil
}

func (s *memStore) Ended(ctx context.Context, shards []string) (map[string]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(shards))
	for _, sh := range shards {
		if s.ended[sh] {
			out[sh] = true
		}
	}
	return out, nil
}

func (s *memStore) Apply(ctx context.Context, c *metric.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rng.Float64() < s.failP {
		s.failed++
		return errors.New("injected apply error")
	}
	if c.Pos.Seq != c.Last || stream.CompareSeq(c.First, c.Last) > 0 {
		return fmt.Errorf("bad commit %s..%s pos %s", c.First, c.Last, c.Pos.Seq)
	}
	cur := s.pos[c.Shard].Seq
	if stream.CompareSeq(c.Last, cur) <= 0 {
		s.redeliver++
		return nil
	}
	if stream.CompareSeq(c.First, cur) <= 0 {
		s.overlaps++
		return fmt.Errorf("commit %s..%s overlaps applied %s", c.First, c.Last, cur)
	}
	if stream.PrevSeq(c.First) != cur {
		return fmt.Errorf("commit %s..%s leaves a gap after %s", c.First, c.Last, cur)
	}
	for k, n := range c.Update.Counts {
		s.counts[k] += n
	}
	for k, n := range c.Update.Samples {
		s.samples[k] += n
	}
	for k, vs := range c.Update.Uniques {
		if s.uniques[k] == nil {
			s.uniques[k] = map[string]struct{}{}
		}
		for v := range vs {
			s.uniques[k][v] = struct{}{}
		}
	}
	s.pos[c.Shard] = c.Pos
	s.applied++
	s.order = append(s.order, c.Shard)
	if s.rng.Float64() < s.lostP {
		s.lost++
		return errors.New("injected lost reply")
	}
	return nil
}

// workload is a test stream: events with retries (same id, later RT),
// late, too late, future and out-of-order timestamps, bots and props.
type workload struct {
	events []event.Event // in stream order, per shard interleaved
	unique []event.Event // first sightings: the ground truth
}

func makeWorkload(seed uint64, n int, base int64) workload {
	r := rand.New(rand.NewPCG(seed, 3))
	var w workload
	var sent []event.Event
	rt := base
	for i := 0; len(w.events) < n; i++ {
		rt += int64(r.IntN(20))
		if len(sent) > 0 && r.IntN(5) == 0 {
			// A client retry: same event, received again a little later.
			e := sent[len(sent)-1-r.IntN(min(len(sent), 50))]
			e.RT = rt + int64(r.IntN(2000))
			w.events = append(w.events, e)
			continue
		}
		e := event.Event{
			ID: fmt.Sprintf("e%d", i), Site: []string{"s1", "s2"}[r.IntN(2)],
			Type: []string{"pageview", "pageview", "click", "signup"}[r.IntN(4)],
			RT:   rt, Path: fmt.Sprintf("/p%d", r.IntN(8)), RefHost: []string{"", "news", "search"}[r.IntN(3)],
			Device: []string{"desktop", "mobile"}[r.IntN(2)], UID: fmt.Sprintf("u%d", r.IntN(40)),
		}
		switch x := r.IntN(100); {
		case x < 3:
			e.TS = rt - 25*3600_000 // too late
		case x < 6:
			e.TS = rt - 7*3600_000 // past the 10s retention
		case x < 9:
			e.TS = rt + 10*60_000 // too far ahead: clamped
		case x < 30:
			e.TS = rt - int64(r.IntN(3600_000)) // late, out of order
		default:
			e.TS = rt - int64(r.IntN(2000))
		}
		if r.IntN(20) == 0 {
			e.Bot, e.Device = true, "bot"
		}
		if e.Type == "click" && r.IntN(2) == 0 {
			e.Props = map[string]any{"target": fmt.Sprintf("b%d", r.IntN(3))}
		}
		if e.Type == "signup" {
			// Decimal prices, whose float sums depend on their order
			// (0.1 + 0.2), as numbers and strings, and some no number.
			price := []any{0.0, 10.0, 19.99, 0.1, 0.2, "5.01", -2.5, "free"}[r.IntN(8)]
			e.Props = map[string]any{"plan": []string{"pro", "free"}[r.IntN(2)], "price": price}
		}
		sent = append(sent, e)
		w.unique = append(w.unique, e)
		w.events = append(w.events, e)
	}
	return w
}

func shardOf(e *event.Event, n int) int {
	h := fnv.New32a()
	h.Write([]byte(e.PartitionKey()))
	return int(h.Sum32() % uint32(n))
}

// truth folds the first sightings into one update: what an uninterrupted
// run over a duplicate-free stream gives.
func truth(cat *metric.Catalog, evs []event.Event) *metric.Update {
	p := newPlan(cat, event.DefaultTimeRule())
	c := newCombiner(p)
	t := &tally{skipped: make([]int64, len(p.steps))}
	for i := range evs {
		c.add(&evs[i], t)
	}
	return c.update()
}
