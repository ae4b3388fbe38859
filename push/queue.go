package push

import (
	"sync"
	"time"
)

// frame is one message waiting for the writer: a shared delta body behind a
// subscription's prefix, or a whole message (prefix nil).
type frame struct {
	sub    *sub // nil for connection-level messages
	prefix []byte
	body   []byte
	b      *batch // delta frames: the points, for folding
	delta  bool
}

// pending is a slow subscription's merged delta.
type pending struct {
	sub       *sub
	from, seq int64
	idx       map[pointKey]int
	points    []DeltaPoint
}

// queue is a connection's bounded send queue. Producers (the hub loop and
// the handling of client messages) never block on it; the writer takes everything at once. Safe
// for concurrent use.
type queue struct {
	limit int // points

	mu           sync.Mutex
	frames       []frame
	merged       map[*sub]*pending
	order        []*pending
	points       int // points in delta frames and merged keys
	bytes        int // bytes of whole messages
	stalledSince time.Time
	resets       []*sub
	spare        []frame // the writer's last frames, emptied, for the next ones

	// Called without mu; nil in unit tests of the queue alone.
	onWake  func() // something to write
	onReset func() // a subscription needs a reset snapshot
	onStall func() // the queue became stalled

	drained chan struct{} // reader: the writer emptied the queue
}

func newQueue(limit int) *queue {
	return &queue{
		limit:   limit, // merged is made by the first merge: most connections never merge
		drained: make(chan struct{}, 1),
	}
}

func call(f func()) {
	if f != nil {
		f()
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push queues a whole message.
func (q *queue) push(s *sub, msg []byte) {
	q.mu.Lock()
	q.frames = append(q.frames, frame{sub: s, body: msg})
	q.bytes += len(msg)
	q.mu.Unlock()
	call(q.onWake)
}

// pushDelta queues b for s: as a shared frame while there is room, else
// merged into s's pending delta (after folding every queued delta frame into
// the pending deltas, so merging works on all that waits). A new key with the
// queue full drops s's pending points and asks the connection for a reset
// snapshot. It returns the number of merged points and whether s overflowed.
func (q *queue) pushDelta(s *sub, b *batch, now time.Time) (merges int, overflow bool) {
	q.mu.Lock()
	stalled := false
	defer func() {
		q.mu.Unlock()
		call(q.onWake)
		if overflow {
			call(q.onReset)
		}
		if stalled {
			call(q.onStall)
		}
	}()
	if s.resetPending {
		return 0, false
	}
	if q.merged[s] == nil && q.points+len(b.points) <= q.limit {
		q.frames = append(q.frames, frame{sub: s, prefix: s.prefix, body: b.body, b: b, delta: true})
		q.points += len(b.points)
		return 0, false
	}
	if q.stalledSince.IsZero() {
		q.stalledSince = now
		stalled = true
	}
	merges = q.fold()
	m := q.pendingOf(s, b.from)
	for _, p := range b.points {
		k := keyOf(p)
		if i, ok := m.idx[k]; ok {
			m.points[i].Add += p.Add
			m.points[i].Value = p.Value
			merges++
			continue
		}
		if q.points >= q.limit {
			q.points -= len(m.points)
			delete(q.merged, s)
			m.points, m.idx = nil, nil
			s.resetPending = true
			q.resets = append(q.resets, s)
			return merges, true
		}
		m.idx[k] = len(m.points)
		m.points = append(m.points, p)
		q.points++
	}
	m.seq = b.seq
	return merges, false
}

func (q *queue) pendingOf(s *sub, from int64) *pending {
	m := q.merged[s]
	if m == nil {
		m = &pending{sub: s, from: from, idx: map[pointKey]int{}}
		if q.merged == nil {
			q.merged = map[*sub]*pending{}
		}
		q.merged[s] = m
		q.order = append(q.order, m)
	}
	return m
}

// fold turns the queued delta frames into pending deltas. Each
// subscription's frames come after its whole messages and before any of
// its pending delta, so the order the client sees is kept. Folding never
// adds points.
func (q *queue) fold() (merges int) {
	kept := q.frames[:0]
	for _, f := range q.frames {
		if !f.delta || f.sub.resetPending {
			kept = append(kept, f)
			continue
		}
		m := q.pendingOf(f.sub, f.b.from)
		for _, p := range f.b.points {
			k := keyOf(p)
			if i, ok := m.idx[k]; ok {
				m.points[i].Add += p.Add
				m.points[i].Value = p.Value
				merges++
				q.points--
				continue
			}
			m.idx[k] = len(m.points)
			m.points = append(m.points, p)
		}
		m.seq = f.b.seq
	}
	clear(q.frames[len(kept):])
	q.frames = kept
	return merges
}

// markReset asks for a reset snapshot of s (the hub lost its chain).
func (q *queue) markReset(s *sub) {
	q.mu.Lock()
	if !s.resetPending {
		s.resetPending = true
		q.resets = append(q.resets, s)
	}
	q.mu.Unlock()
	call(q.onReset)
}

// take hands the writer everything queued, in order.
func (q *queue) take() ([]frame, []*pending) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var f []frame
	if len(q.frames) > 0 {
		f, q.frames, q.spare = q.frames, q.spare, nil
	}
	var ps []*pending
	for _, m := range q.order {
		if q.merged[m.sub] == m {
			ps = append(ps, m)
		}
	}
	q.order, q.merged = nil, nil
	q.points, q.bytes = 0, 0
	q.stalledSince = time.Time{}
	return f, ps
}

// recycle takes back frames, which take returned and the writer has
// written, to hold the next ones: most messages then cost no allocation
// of the queue's.
func (q *queue) recycle(frames []frame) {
	if cap(frames) > maxSpareFrames {
		return
	}
	clear(frames)
	q.mu.Lock()
	q.spare = frames[:0]
	q.mu.Unlock()
}

// maxSpareFrames bounds the frames slice a queue keeps between writes.
const maxSpareFrames = 64

// takeResets returns the subscriptions waiting for a reset once the writer
// has emptied the queue, so a client that reads nothing never accumulates
// snapshots.
func (q *queue) takeResets() []*sub {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) > 0 || len(q.order) > 0 || len(q.resets) == 0 {
		return nil
	}
	r := q.resets
	q.resets = nil
	return r
}

// pending says whether anything waits for the writer.
func (q *queue) pending() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames) > 0 || len(q.order) > 0
}

// resetsWaiting says whether takeResets would return something now.
func (q *queue) resetsWaiting() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames) == 0 && len(q.order) == 0 && len(q.resets) > 0
}

func (q *queue) queuedBytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// stalledFor says how long the queue has been full without the writer taking it.
func (q *queue) stalledFor(now time.Time) time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stalledSince.IsZero() {
		return 0
	}
	return now.Sub(q.stalledSince)
}
