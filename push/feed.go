package push

import (
	"context"
	"fmt"
)

type feedKey struct{ site, metric string }

type topicKey struct {
	feedKey
	step, dim string
}

// feed is one (site, metric) the hub listens to: its delta log position and
// the topics computed from it. Owned by the loop goroutine.
type feed struct {
	key     feedKey
	joined  bool  // the pub/sub subscription was confirmed once
	ready   bool  // last is known
	last    int64 // highest n processed
	topics  map[topicKey]*topic
	waiters []chan error
}

// topic is one distinct subscription key: its points are filtered once per
// entry and the merged delta encoded once per flush for every subscriber.
type topic struct {
	key     topicKey
	subs    map[*sub]struct{} // active
	syncing map[*sub]struct{} // waiting for their snapshot
	pending []entryPoints     // since the last flush
}

func (t *topic) filter(pts []DeltaPoint) []DeltaPoint {
	var out []DeltaPoint
	for _, p := range pts {
		if p.Step == t.key.step && p.Label.Dim == t.key.dim {
			out = append(out, p)
		}
	}
	return out
}

// attach registers s with its topic, syncing, and waits until the feed's
// position is known: entries the topic sees from then on are buffered for s
// until activate.
func (h *Hub) attach(ctx context.Context, s *sub) error {
	reply := make(chan error, 1)
	err := h.do(ctx, func(lis Listener) {
		fk := s.key.feedKey
		f := h.feeds[fk]
		if f == nil {
			rctx, cancel := h.redisCtx(ctx)
			err := lis.Subscribe(rctx, fk.site, fk.metric)
			cancel()
			if err != nil {
				reply <- err
				return
			}
			f = &feed{key: fk, topics: map[topicKey]*topic{}}
			h.feeds[fk] = f
		}
		t := f.topics[s.key]
		if t == nil {
			t = &topic{key: s.key, subs: map[*sub]struct{}{}, syncing: map[*sub]struct{}{}}
			f.topics[s.key] = t
			h.ntopic++
			h.m.topics.Set(float64(h.ntopic))
		}
		s.early, s.earlyOverflow = nil, false
		t.syncing[s] = struct{}{}
		if f.ready {
			reply <- nil
		} else {
			f.waiters = append(f.waiters, reply)
		}
	})
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*redisTimeout)
	defer cancel()
	select {
	case err := <-reply:
		return err
	case <-wctx.Done():
		return fmt.Errorf("wait for delta feed %s/%s: %w", s.key.site, s.key.metric, wctx.Err())
	}
}

// activate makes s live from seq: it queues pre (a snapshot or replayed
// delta ending at seq), then the buffered entries after seq. It reports
// false when s must be attached again (its buffer overflowed or its feed
// lost its chain).
func (h *Hub) activate(ctx context.Context, s *sub, seq int64, pre []byte) (bool, error) {
	var ok bool
	err := h.do(ctx, func(Listener) {
		f := h.feeds[s.key.feedKey]
		if f == nil {
			return
		}
		t := f.topics[s.key]
		if t == nil {
			return
		}
		if _, syncing := t.syncing[s]; !syncing {
			return
		}
		h.flushTopic(t)
		delete(t.syncing, s)
		early := s.early
		s.early = nil
		if s.earlyOverflow {
			h.dropTopicIfEmpty(f, t)
			return
		}
		q := s.c.q
		if pre != nil {
			q.push(s, pre)
		}
		if b, more := mergeEntries(early, seq); more {
			if merges, overflow := q.pushDelta(s, b, h.cfg.Now()); merges > 0 || overflow {
				h.m.merges.Add(float64(merges))
			}
		}
		s.after = max(seq, f.last)
		t.subs[s] = struct{}{}
		ok = true
	})
	return ok, err
}

// detach removes s from its topic, and the topic and feed when unused.
func (h *Hub) detach(ctx context.Context, s *sub) {
	if s.stopLive != nil {
		s.stopLive()
		return
	}
	_ = h.do(ctx, func(lis Listener) {
		f := h.feeds[s.key.feedKey]
		if f == nil {
			return
		}
		t := f.topics[s.key]
		if t == nil {
			return
		}
		delete(t.subs, s)
		delete(t.syncing, s)
		s.early = nil
		h.dropTopicIfEmpty(f, t)
		if len(f.topics) == 0 {
			delete(h.feeds, f.key)
			rctx, cancel := h.redisCtx(ctx)
			defer cancel()
			if err := lis.Unsubscribe(rctx, f.key.site, f.key.metric); err != nil {
				h.cfg.Logger.Warn("push: unsubscribe", "site", f.key.site, "metric", f.key.metric, "err", err)
			}
		}
	})
}

func (h *Hub) dropTopicIfEmpty(f *feed, t *topic) {
	if len(t.subs) == 0 && len(t.syncing) == 0 {
		delete(f.topics, t.key)
		h.ntopic--
		h.m.topics.Set(float64(h.ntopic))
	}
}

// flushTopic sends the entries gathered since the last flush: one shared
// batch for every subscriber whose chain it continues, a merge of its own
// for one that started in the middle of it.
func (h *Hub) flushTopic(t *topic) {
	if len(t.pending) == 0 {
		return
	}
	shared, _ := mergeEntries(t.pending, t.pending[0].n-1)
	now := h.cfg.Now()
	for s := range t.subs {
		b := shared
		switch {
		case s.after >= shared.seq:
			continue
		case s.after >= shared.from:
			b, _ = mergeEntries(t.pending, s.after)
		case s.after < shared.from-1:
			// Cannot happen: activation and gap handling keep every chain
			// contiguous. Resynchronise rather than send a gap.
			h.cfg.Logger.Error("push: subscription chain broken", "id", s.id, "after", s.after, "from", shared.from)
			delete(t.subs, s)
			s.c.q.markReset(s)
			continue
		}
		merges, _ := s.c.q.pushDelta(s, b, now)
		if merges > 0 {
			h.m.merges.Add(float64(merges))
		}
		s.after = shared.seq
	}
	t.pending = nil
}

// notice handles one live message.
func (h *Hub) notice(ctx context.Context, n Notice) {
	f := h.feeds[feedKey{n.Site, n.Metric}]
	if f == nil {
		return
	}
	if n.Joined {
		f.joined = true
		h.sync(ctx, f)
		return
	}
	if !f.ready {
		return
	}
	e := n.Delta
	if e.N <= f.last {
		return
	}
	if e.N > f.last+1 {
		h.catchUp(ctx, f, e.N-1)
	}
	h.apply(f, e)
}

// sync brings f up to the head of its log: the first time it just learns
// the head (no subscriber predates it); later it reads what pub/sub missed.
func (h *Hub) sync(ctx context.Context, f *feed) {
	rctx, cancel := h.redisCtx(ctx)
	head, err := h.src.Last(rctx, f.key.site, f.key.metric)
	cancel()
	if err != nil {
		h.cfg.Logger.Warn("push: read delta log head", "site", f.key.site, "metric", f.key.metric, "err", err)
		return
	}
	if !f.ready {
		f.last, f.ready = head, true
		for _, w := range f.waiters {
			w <- nil
		}
		f.waiters = nil
		return
	}
	switch {
	case head > f.last:
		h.catchUp(ctx, f, head)
	case head < f.last:
		// The log restarted (Redis lost its data): every chain is void.
		h.cfg.Logger.Warn("push: delta log went back", "site", f.key.site, "metric", f.key.metric, "head", head, "last", f.last)
		h.resetFeed(f, head)
	}
}

// catchUp applies the entries f.last+1..upto from the log, or resets every
// subscriber of f when the log no longer holds them.
func (h *Hub) catchUp(ctx context.Context, f *feed, upto int64) {
	for f.last < upto {
		want := upto - f.last
		if want > maxCatchUp {
			break
		}
		rctx, cancel := h.redisCtx(ctx)
		entries, err := h.src.Range(rctx, f.key.site, f.key.metric, f.last+1, want)
		cancel()
		if err != nil {
			h.cfg.Logger.Warn("push: catch up delta log", "site", f.key.site, "metric", f.key.metric, "err", err)
			break
		}
		if len(entries) == 0 || entries[0].N != f.last+1 {
			break
		}
		for _, e := range entries {
			if e.N != f.last+1 || e.N > upto {
				break
			}
			h.apply(f, e)
		}
	}
	if f.last < upto {
		h.resetFeed(f, upto)
	}
}

// resetFeed gives up the chains of f's subscribers: each gets a reset
// snapshot, and f continues from last.
func (h *Hub) resetFeed(f *feed, last int64) {
	for _, t := range f.topics {
		h.flushTopic(t)
		detachTopic(t)
	}
	f.last = last
}

// detachTopic sends every subscriber of t back for a reset snapshot: the
// active ones at once, those still syncing when their snapshot comes (it
// may predate the break, so activate refuses it and they attach again).
func detachTopic(t *topic) {
	for s := range t.syncing {
		s.earlyOverflow = true
	}
	for s := range t.subs {
		delete(t.subs, s)
		s.c.q.markReset(s)
	}
}

// apply processes one entry: filtered once per topic, buffered for syncing
// subscribers.
func (h *Hub) apply(f *feed, e Delta) {
	for _, t := range f.topics {
		ep := entryPoints{n: e.N, points: t.filter(e.Points)}
		t.pending = append(t.pending, ep)
		for s := range t.syncing {
			if len(s.early) >= maxEarly {
				s.earlyOverflow = true
				continue
			}
			s.early = append(s.early, ep)
		}
		if len(t.pending) >= 1024 {
			h.flushTopic(t)
		}
	}
	f.last = e.N
}

// check catches up feeds whose pub/sub stream went quiet after a lost
// message, and finishes feeds whose first head read failed.
func (h *Hub) check(ctx context.Context) {
	for _, f := range h.feeds {
		if f.joined {
			h.sync(ctx, f)
		}
	}
}
