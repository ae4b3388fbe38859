package control

import (
	"context"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pulsehq/pulse/lease"
)

// leaveTimeout bounds the Leave of a stopping group member; past it the
// others take over after the lease TTL instead.
const leaveTimeout = 5 * time.Second

// RunInGroup runs work under m until ctx ends: m takes the leases
// workable lists, and work does what m holds (aggregator's or archiver's
// RunLeased with m). Once both stopped, this instance leaves the
// group, so the others take its leases at their next round rather than
// after the lease TTL. what names the group in the log ("aggregator
// group"). It returns the first error of m or work.
func RunInGroup(ctx context.Context, m *lease.Manager, what string, workable func(context.Context) ([]string, error), work func(context.Context) error, log *slog.Logger) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.Run(gctx, workable) })
	g.Go(func() error { return work(gctx) })
	err := g.Wait()
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
	defer cancel()
	if lerr := m.Leave(lctx); lerr != nil {
		log.Warn("leave the "+what, "err", lerr)
	} else {
		log.Info("left the "+what, "owner", m.Owner())
	}
	return err
}
