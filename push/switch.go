package push

import (
	"context"
	"errors"

	"github.com/pulsehq/pulse/metric"
)

// Switch moves the hub to another aggregate namespace without a restart:
// on the hub's loop, it unsubscribes every delta channel of the old
// namespace, calls swap (which must make the hub's Source read the new
// namespace from then on), subscribes the new
// namespace's channels, and gives every live subscription a reset snapshot
// ({"op":"snapshot","reset":true}) read from the new namespace. The
// subscription's chain then continues from that snapshot's seq with the
// new namespace's deltas, so a client sees no gap: it replaces its series
// with the snapshot, as on any reset. cat, when not nil, replaces the
// catalog subscriptions are checked against (the new namespace's). Live
// queries (Config.Live) are told by LiveQueries.Switched: each is counted
// again from the new namespace's rows and sends a reset snapshot.
//
// When the hub is not running, Switch just calls swap.
func (h *Hub) Switch(ctx context.Context, cat *metric.Catalog, swap func()) error {
	err := h.do(ctx, func(lis Listener) {
		for _, f := range h.feeds {
			for _, t := range f.topics {
				h.flushTopic(t)
			}
			rctx, cancel := h.redisCtx(ctx)
			if err := lis.Unsubscribe(rctx, f.key.site, f.key.metric); err != nil {
				h.cfg.Logger.Warn("push: switch: unsubscribe", "site", f.key.site, "metric", f.key.metric, "err", err)
			}
			cancel()
		}
		swap()
		if cat != nil {
			h.catalog.Store(cat)
		}
		if h.cfg.Live != nil {
			h.cfg.Live.Switched()
		}
		for _, f := range h.feeds {
			for _, t := range f.topics {
				detachTopic(t) // snapshots in flight may be the old namespace's
				t.pending = nil
			}
			// The new namespace's log has its own n: learn its head
			// again once the new channel is joined.
			f.joined, f.ready, f.last = false, false, 0
			rctx, cancel := h.redisCtx(ctx)
			if err := lis.Subscribe(rctx, f.key.site, f.key.metric); err != nil {
				h.cfg.Logger.Warn("push: switch: subscribe", "site", f.key.site, "metric", f.key.metric, "err", err)
			}
			cancel()
		}
	})
	if errors.Is(err, ErrStopped) {
		swap()
		if cat != nil {
			h.catalog.Store(cat)
		}
		return nil
	}
	return err
}
