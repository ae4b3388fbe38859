package push

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pulsehq/pulse/metric"
)

// MemoryConfig configures a MemorySource. Zero values mean the defaults.
type MemoryConfig struct {
	// History is how many entries each delta log keeps (2000, as the Redis
	// store's default): a resume or catch-up from further back gets a reset.
	History int
	// Now is the clock buckets expire by, each after its step's retention;
	// nil means time.Now.
	Now func() time.Time
}

// MemorySource is a Source held in memory: the buckets and delta logs of
// one process, written by Publish. It plays, without Redis, the part the
// aggregate store and redisagg.Source play together. pulse serve uses the
// Redis one; this one runs push's own tests and its fan-out benchmark, and
// passes the same conformance suite (push/sourcetest). It is safe for
// concurrent use.
type MemorySource struct {
	cat *metric.Catalog
	cfg MemoryConfig

	mu        sync.Mutex
	logs      map[feedKey]*memLog
	listeners map[feedKey]map[*memListener]struct{}
	nextPrune time.Time
}

var _ Source = (*MemorySource)(nil)

// memLog is one (site, metric): the counter n, the newest entries, and the
// value of every bucket by (step, bucket start) and label.
type memLog struct {
	n       int64
	entries []Delta // oldest first
	buckets map[memBucket]map[Label]int64
}

type memBucket struct {
	step string
	t    int64
}

// NewMemorySource returns an empty MemorySource for the metrics and steps
// of cat.
func NewMemorySource(cat *metric.Catalog, cfg MemoryConfig) *MemorySource {
	if cfg.History <= 0 {
		cfg.History = 2000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &MemorySource{cat: cat, cfg: cfg, logs: map[feedKey]*memLog{}, listeners: map[feedKey]map[*memListener]struct{}{}}
}

// Publish applies pts to the buckets of (site, metricName) and appends them
// to its log as one entry, as the Redis store does for one applied commit:
// each point's T is aligned down to its step's bucket and its Value set to
// the bucket's new total (for a unique metric, pts carry the change of the
// distinct count), the entry gets the next n, and the listeners subscribed
// to (site, metricName) are notified. It returns the entry; empty pts log
// nothing.
func (m *MemorySource) Publish(site, metricName string, pts []DeltaPoint) (Delta, error) {
	out := make([]DeltaPoint, len(pts))
	for i, p := range pts {
		st, err := m.checkPoint(metricName, p)
		if err != nil {
			return Delta{}, fmt.Errorf("publish %s/%s point %d: %w", site, metricName, i, err)
		}
		p.T = st.Bucket(p.T)
		out[i] = p
	}
	if len(out) == 0 {
		return Delta{}, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune()
	k := feedKey{site, metricName}
	l := m.logs[k]
	if l == nil {
		l = &memLog{buckets: map[memBucket]map[Label]int64{}}
		m.logs[k] = l
	}
	for i, p := range out {
		b := memBucket{p.Step, p.T}
		vals := l.buckets[b]
		if vals == nil {
			vals = map[Label]int64{}
			l.buckets[b] = vals
		}
		vals[p.Label] += p.Add
		out[i].Value = vals[p.Label]
	}
	l.n++
	d := Delta{N: l.n, Points: out}
	l.entries = append(l.entries, d)
	if over := len(l.entries) - m.cfg.History; over > 0 {
		l.entries = slices.Delete(l.entries, 0, over)
	}
	for lis := range m.listeners[k] {
		lis.deliver(Notice{Site: site, Metric: metricName, Delta: d})
	}
	return d, nil
}

// checkPoint validates p against the catalog, as the aggregator's records
// are before they reach the store.
func (m *MemorySource) checkPoint(metricName string, p DeltaPoint) (metric.Step, error) {
	def, ok := m.cat.Metric(metricName)
	if !ok {
		return metric.Step{}, fmt.Errorf("unknown metric %q", metricName)
	}
	st, ok := m.cat.Step(p.Step)
	if !ok {
		return metric.Step{}, fmt.Errorf("unknown step %q", p.Step)
	}
	if p.Label.Dim != "" && (def.Kind == metric.Unique || !def.HasDim(p.Label.Dim)) {
		return metric.Step{}, fmt.Errorf("metric %q has no dimension %q", metricName, p.Label.Dim)
	}
	return st, nil
}

// prune drops the buckets past their step's retention, at most once a
// minute. Called under mu.
func (m *MemorySource) prune() {
	now := m.cfg.Now()
	if now.Before(m.nextPrune) {
		return
	}
	m.nextPrune = now.Add(time.Minute)
	for _, l := range m.logs {
		for b := range l.buckets {
			if st, ok := m.cat.Step(b.step); !ok || b.t+st.Retention.Milliseconds() < now.UnixMilli() {
				delete(l.buckets, b)
			}
		}
	}
}

// Trim drops all but the newest keep entries of the log of (site,
// metricName), as a shorter History would have.
func (m *MemorySource) Trim(site, metricName string, keep int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.logs[feedKey{site, metricName}]; l != nil && len(l.entries) > keep {
		l.entries = slices.Delete(l.entries, 0, len(l.entries)-max(keep, 0))
	}
}

// Range implements Source.
func (m *MemorySource) Range(_ context.Context, site, metricName string, from, count int64) ([]Delta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.logs[feedKey{site, metricName}]
	if l == nil || count <= 0 {
		return nil, nil
	}
	i, _ := slices.BinarySearchFunc(l.entries, from, func(d Delta, n int64) int { return cmp.Compare(d.N, n) })
	j := min(len(l.entries), i+int(min(count, int64(len(l.entries)))))
	return slices.Clone(l.entries[i:j]), nil
}

// Last implements Source.
func (m *MemorySource) Last(_ context.Context, site, metricName string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.logs[feedKey{site, metricName}]; l != nil && len(l.entries) > 0 {
		return l.entries[len(l.entries)-1].N, nil
	}
	return 0, nil
}

// Snapshot implements Source.
func (m *MemorySource) Snapshot(_ context.Context, q SnapshotQuery) (int64, []Series, error) {
	st, buckets, err := m.plan(q)
	if err != nil {
		return 0, nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.logs[feedKey{q.Site, q.Metric}]
	if l == nil {
		l = &memLog{}
	}
	valuesAt := func(i int) map[Label]int64 { return l.buckets[memBucket{st.Name, buckets[i]}] }
	if q.GroupBy == "" {
		s := Series{Labels: map[string]string{}, Points: make([][2]int64, len(buckets))}
		for i, b := range buckets {
			s.Points[i] = [2]int64{b, valuesAt(i)[Label{}]}
		}
		return l.n, []Series{s}, nil
	}
	totals := map[string]int64{}
	for i := range buckets {
		for lb, v := range valuesAt(i) {
			if lb.Dim == q.GroupBy {
				totals[lb.Value] += v
			}
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 10
	}
	names := metric.Largest(totals, limit)
	out := make([]Series, 0, len(names))
	for _, name := range names {
		s := Series{Labels: map[string]string{q.GroupBy: name}, Points: make([][2]int64, len(buckets))}
		for i, b := range buckets {
			s.Points[i] = [2]int64{b, valuesAt(i)[Label{q.GroupBy, name}]}
		}
		out = append(out, s)
	}
	return l.n, out, nil
}

// plan checks q and lists the bucket starts it covers.
func (m *MemorySource) plan(q SnapshotQuery) (metric.Step, []int64, error) {
	def, ok := m.cat.Metric(q.Metric)
	if !ok {
		return metric.Step{}, nil, fmt.Errorf("%w: unknown metric %q", ErrBadQuery, q.Metric)
	}
	st, ok := m.cat.Step(q.Step)
	if !ok {
		return metric.Step{}, nil, fmt.Errorf("%w: unknown step %q", ErrBadQuery, q.Step)
	}
	if q.GroupBy != "" && (def.Kind == metric.Unique || !def.HasDim(q.GroupBy)) {
		return metric.Step{}, nil, fmt.Errorf("%w: metric %q has no dimension %q", ErrBadQuery, q.Metric, q.GroupBy)
	}
	from, to, w := st.Bucket(q.From), st.Bucket(q.To), st.Width.Milliseconds()
	if from > to {
		return metric.Step{}, nil, fmt.Errorf("%w: from %d is after to %d", ErrBadQuery, q.From, q.To)
	}
	if n := (to-from)/w + 1; n > MaxSnapshotBuckets {
		return metric.Step{}, nil, fmt.Errorf("%w: %d buckets of %s, at most %d", ErrBadQuery, n, st.Name, MaxSnapshotBuckets)
	}
	var buckets []int64
	for b := from; b <= to; b += w {
		buckets = append(buckets, b)
	}
	return st, buckets, nil
}
