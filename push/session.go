package push

import (
	"context"
	"errors"
	"fmt"

	"github.com/coder/websocket"

	"github.com/pulsehq/pulse/metric"
)

// close closes the WebSocket with code; the goroutines end with it.
func (c *conn) close(code websocket.StatusCode, reason string) {
	_ = c.ws.Close(code, reason)
}

// waitRoom stops reading client messages while the queue holds too many
// whole messages, so a client that sends but does not read stays bounded.
func (c *conn) waitRoom(ctx context.Context) bool {
	for c.q.queuedBytes() > maxQueuedBytes {
		select {
		case <-ctx.Done():
			return false
		case <-c.q.drained:
			c.resets(ctx)
		}
	}
	return true
}

func (c *conn) sendError(id, code, msg string) {
	c.q.push(nil, encodeError(id, code, msg))
}

// handle processes one client message; false ends the connection.
func (c *conn) handle(ctx context.Context, b []byte) bool {
	if !c.waitRoom(ctx) {
		return false
	}
	m, err := DecodeClientMessage(b)
	if !c.authed.Load() {
		switch {
		case err != nil || m.Op != OpAuth:
			c.close(websocket.StatusPolicyViolation, "auth required first")
			return false
		case !c.h.cfg.Tokens.Read(m.Token):
			c.close(websocket.StatusPolicyViolation, "invalid read token")
			return false
		}
		c.token = m.Token
		c.authed.Store(true)
		c.ws.SetReadLimit(c.h.cfg.MaxAuthedMessageBytes)
		c.dropUnauth() // it counts against Config.Admit's cap alone now
		return true
	}
	if err != nil {
		c.sendError("", CodeBadMessage, err.Error())
		return true
	}
	switch m.Op {
	case OpAuth:
		if c.h.cfg.Tokens != nil && !c.h.cfg.Tokens.Read(m.Token) {
			c.close(websocket.StatusPolicyViolation, "invalid read token")
			return false
		}
		c.token = m.Token // later subscribes are checked against it
	case OpUnsubscribe:
		s := c.subs[m.ID]
		if s == nil {
			c.sendError(m.ID, CodeUnknownID, fmt.Sprintf("no subscription %q", m.ID))
			return true
		}
		delete(c.subs, m.ID)
		c.h.m.subscriptions.Dec()
		s.closed.Store(true)
		c.h.detach(ctx, s)
	case OpSubscribe:
		if _, dup := c.subs[m.ID]; dup {
			c.sendError(m.ID, CodeDuplicateID, fmt.Sprintf("subscription %q exists; unsubscribe it first", m.ID))
			return true
		}
		if len(c.subs) >= c.h.cfg.MaxSubsPerConn {
			c.sendError(m.ID, CodeLimit, fmt.Sprintf("at most %d subscriptions per connection", c.h.cfg.MaxSubsPerConn))
			return true
		}
		if m.Query != "" {
			c.subscribeLive(ctx, m, false)
			return true
		}
		if !c.siteAllowed(m.Site) {
			c.sendError(m.ID, CodeForbidden, forbidden(m.Site))
			return true
		}
		if err := c.h.validate(m); err != nil {
			c.sendError(m.ID, CodeBadQuery, err.Error())
			return true
		}
		c.subscribe(ctx, m, false)
	}
	return true
}

// validate checks a subscription against the catalog.
func (h *Hub) validate(m ClientMessage) error {
	cat := h.catalog.Load()
	def, ok := cat.Metric(m.Metric)
	if !ok {
		return fmt.Errorf("unknown metric %q (see GET /v1/metrics)", m.Metric)
	}
	st, ok := cat.Step(m.Step)
	if !ok {
		return fmt.Errorf("unknown step %q (see GET /v1/metrics)", m.Step)
	}
	if m.GroupBy != "" {
		if def.Kind == metric.Unique {
			return fmt.Errorf("metric %q counts distinct values and has no dimension to group by", m.Metric)
		}
		if !def.HasDim(m.GroupBy) {
			return fmt.Errorf("metric %q has no dimension %q (it has %v)", m.Metric, m.GroupBy, def.Dims)
		}
	}
	if m.Window > st.Retention {
		return fmt.Errorf("window %s is longer than the %s retention of step %s", m.Window, st.Retention, st.Name)
	}
	if n := int64(m.Window / st.Width); n > MaxSnapshotBuckets {
		return fmt.Errorf("window %s holds %d buckets of %s, at most %d", m.Window, n, st.Name, MaxSnapshotBuckets)
	}
	return nil
}

// subscribe makes m live: attach, snapshot (or replay from since), activate;
// retried when entries arrived faster than the snapshot could be read.
func (c *conn) subscribe(ctx context.Context, m ClientMessage, reset bool) {
	if m.Query != "" {
		c.subscribeLive(ctx, m, reset)
		return
	}
	h := c.h
	var lastErr error
	for range 3 {
		s := &sub{c: c, id: m.ID, prefix: deltaPrefix(m.ID), req: m,
			key: topicKey{feedKey: feedKey{m.Site, m.Metric}, step: m.Step, dim: m.GroupBy}}
		if err := h.attach(ctx, s); err != nil {
			h.detach(ctx, s)
			lastErr = err
			break
		}
		var pre []byte
		var seq int64
		resumed := false
		if m.HasSince && !reset {
			var err error
			pre, seq, resumed, err = c.resume(ctx, s, m.Since)
			if err != nil {
				h.detach(ctx, s)
				lastErr = err
				break
			}
			if !resumed {
				reset = true
			}
		}
		if !resumed {
			rctx, cancel := h.redisCtx(ctx)
			now := h.cfg.Now().UnixMilli()
			var series []Series
			var err error
			seq, series, err = h.src.Snapshot(rctx, SnapshotQuery{Site: m.Site, Metric: m.Metric, Step: m.Step,
				From: now - m.Window.Milliseconds(), To: now, GroupBy: m.GroupBy})
			cancel()
			if err != nil {
				h.detach(ctx, s)
				if errors.Is(err, ErrBadQuery) {
					c.sendError(m.ID, CodeBadQuery, err.Error())
					return
				}
				lastErr = err
				break
			}
			pre = encodeSnapshot(m.ID, seq, series, reset)
		}
		ok, err := h.activate(ctx, s, seq, pre)
		if err != nil {
			lastErr = err
			break
		}
		if ok {
			c.install(m.ID, s, reset)
			return
		}
		h.detach(ctx, s)
		lastErr = errors.New("deltas arrived faster than the snapshot could be read")
	}
	if old := c.subs[m.ID]; old != nil {
		old.closed.Store(true)
		delete(c.subs, m.ID)
		h.m.subscriptions.Dec()
	}
	h.cfg.Logger.Warn("push: subscribe failed", "id", m.ID, "site", m.Site, "metric", m.Metric, "err", lastErr)
	c.sendError(m.ID, CodeUnavailable, "subscription failed, retry later: "+errString(lastErr))
}

func errString(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

// resume replays the log entries since+1..head as one delta when the log
// still holds since+1 and the replay fits the queue. ok is false when the
// client must get a reset snapshot instead.
func (c *conn) resume(ctx context.Context, s *sub, since int64) (msg []byte, seq int64, ok bool, err error) {
	h := c.h
	rctx, cancel := h.redisCtx(ctx)
	defer cancel()
	var entries []Delta
	for attempt := 0; ; attempt++ {
		entries, err = h.src.Range(rctx, s.key.site, s.key.metric, since+1, maxReplay+1)
		if errors.Is(err, ErrBadDelta) {
			return nil, 0, false, nil
		}
		if err != nil {
			return nil, 0, false, err
		}
		if len(entries) > 0 {
			break
		}
		head, err := h.src.Last(rctx, s.key.site, s.key.metric)
		if err != nil {
			return nil, 0, false, err
		}
		switch {
		case head == since:
			return nil, since, true, nil
		case head < since || attempt == 2:
			return nil, 0, false, nil
		}
		// An entry arrived between the two reads: range again.
	}
	if entries[0].N != since+1 || len(entries) > maxReplay {
		return nil, 0, false, nil
	}
	t := topic{key: s.key}
	eps := make([]entryPoints, 0, len(entries))
	for i, e := range entries {
		if e.N != since+1+int64(i) {
			return nil, 0, false, nil
		}
		eps = append(eps, entryPoints{n: e.N, points: t.filter(e.Points)})
	}
	b, _ := mergeEntries(eps, since)
	if len(b.points) > h.cfg.SendQueue {
		return nil, 0, false, nil
	}
	return append(append([]byte(nil), s.prefix...), b.body...), b.seq, true, nil
}

// resets re-subscribes, with a reset snapshot, the subscriptions whose chain
// was given up, once the writer has emptied the queue.
func (c *conn) resets(ctx context.Context) {
	for _, s := range c.q.takeResets() {
		if c.subs[s.id] != s {
			continue
		}
		s.closed.Store(true)
		c.h.detach(ctx, s)
		m := s.req
		m.HasSince = false
		c.subscribe(ctx, m, true)
	}
}

// install makes s the subscription id of the connection, ending the one it
// replaces (a reset), and counts it.
func (c *conn) install(id string, s *sub, reset bool) {
	if old := c.subs[id]; old != nil {
		old.closed.Store(true)
	} else {
		c.h.m.subscriptions.Inc()
	}
	if c.subs == nil {
		c.subs = map[string]*sub{}
	}
	c.subs[id] = s
	if reset {
		c.h.m.resets.Inc()
	}
}
