package push

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/pulsehq/pulse/stats"
)

// LiveQueries runs live Stats API queries, identical ones sharing one
// computation: livequery.Manager.
type LiveQueries interface {
	// Run owns the computations until ctx ends; the hub runs it in Run.
	Run(ctx context.Context) error
	// Subscribe starts a live query of body (a POST /v1/stats body) for
	// one subscriber. send gets each of its messages until stop returns,
	// without blocking: op ("snapshot", "delta" or "error") and the body
	// after the op and id, from the first field to the closing brace.
	// since < 0 starts with a snapshot ("reset":true when reset); else the
	// deltas after since are replayed, or a reset snapshot comes when they
	// are no longer held. A query the API refuses is a *stats.Error.
	Subscribe(ctx context.Context, body []byte, since int64, reset bool, send func(op string, body []byte)) (stop func(), err error)
	// Switched rebuilds every live query from the namespace now current
	// and sends its subscribers a reset snapshot.
	Switched()
}

// livePrefixes are the heads of one live subscription's messages, spliced
// in front of the bodies its computation shares with every subscriber.
type livePrefixes struct{ snapshot, delta, err []byte }

func newLivePrefixes(id string) livePrefixes {
	b, _ := json.Marshal(id)
	head := func(op string) []byte {
		return append(append([]byte(`{"op":"`+op+`","id":`), b...), ',')
	}
	return livePrefixes{snapshot: head("snapshot"), delta: head("delta"), err: head("error")}
}

func (p livePrefixes) of(op string) []byte {
	switch op {
	case "snapshot":
		return p.snapshot
	case "delta":
		return p.delta
	}
	return p.err
}

// subscribeLive makes the live query of m: checked as POST /v1/stats
// checks it (the body, then the token's site scope), then attached to its
// shared computation.
func (c *conn) subscribeLive(ctx context.Context, m ClientMessage, reset bool) {
	h := c.h
	m.Query = string(h.cfg.SiteZones.Body([]byte(m.Query)))
	q, err := stats.Parse([]byte(m.Query), h.cfg.Now())
	if err != nil {
		c.sendQueryError(m.ID, err)
		return
	}
	if !c.siteAllowed(q.Site) {
		c.dropOld(m.ID)
		c.sendError(m.ID, CodeForbidden, forbidden(q.Site))
		return
	}
	if h.cfg.Live == nil {
		c.dropOld(m.ID)
		c.sendError(m.ID, CodeUnavailable, "this node answers no live queries")
		return
	}
	s := &sub{c: c, id: m.ID, req: m}
	pre := newLivePrefixes(m.ID)
	since := int64(-1)
	if m.HasSince && !reset {
		since = m.Since
	}
	rctx, cancel := h.redisCtx(ctx)
	stop, err := h.cfg.Live.Subscribe(rctx, []byte(m.Query), since, reset, func(op string, body []byte) {
		c.q.pushLive(s, pre.of(op), body)
	})
	cancel()
	if err != nil {
		c.dropOld(m.ID)
		var se *stats.Error
		if errors.As(err, &se) {
			c.sendQueryError(m.ID, err)
			return
		}
		h.cfg.Logger.Warn("push: live subscribe failed", "id", m.ID, "site", q.Site, "err", err)
		c.sendError(m.ID, CodeUnavailable, "subscription failed, retry later: "+err.Error())
		return
	}
	s.stopLive = stop
	c.install(m.ID, s, reset)
}

// dropOld ends the subscription id replaced by a reset that failed.
func (c *conn) dropOld(id string) {
	if old := c.subs[id]; old != nil {
		old.closed.Store(true)
		delete(c.subs, id)
		c.h.m.subscriptions.Dec()
	}
}

// sendQueryError answers a query the Stats API refuses: bad_query, with
// the part of the body it names.
func (c *conn) sendQueryError(id string, err error) {
	var se *stats.Error
	part := ""
	if errors.As(err, &se) {
		part = se.Part
	}
	b, _ := json.Marshal(errorMsg{Op: "error", ID: id, Code: CodeBadQuery, Message: err.Error(), Part: part})
	c.q.push(nil, b)
}

// pushLive queues a live query message of s. Past maxQueuedBytes (unless
// the queue is empty: one large snapshot still goes), s's messages are
// dropped and s gets a reset snapshot once the client has read its queue,
// as a subscription of points does when its queue is full.
func (q *queue) pushLive(s *sub, prefix, body []byte) {
	n := len(prefix) + len(body)
	q.mu.Lock()
	if s.resetPending {
		q.mu.Unlock()
		return
	}
	if q.bytes > 0 && q.bytes+n > maxQueuedBytes {
		s.resetPending = true
		q.resets = append(q.resets, s)
		q.mu.Unlock()
		call(q.onReset)
		return
	}
	q.frames = append(q.frames, frame{sub: s, prefix: prefix, body: body})
	q.bytes += n
	q.mu.Unlock()
	call(q.onWake)
}

// checkQuery checks the query field of a subscribe: a JSON object, at most
// maxQueryBytes.
func checkQuery(raw json.RawMessage) error {
	if len(raw) > maxQueryBytes {
		return bad(`"query" is longer than %d bytes`, maxQueryBytes)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return bad(`"query" must be a JSON object, the body of POST /v1/stats`)
	}
	return nil
}

// maxQueryBytes bounds a live query's body; Config.MaxAuthedMessageBytes
// bounds the whole message first.
const maxQueryBytes = 64 << 10
