package archiver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pulsehq/pulse/lease"
)

// The archive role of a group is one lease, for one "shard" standing for
// the whole archive, in its own lease namespace: one writer per shard is
// what keeps object boundaries, hence the archive, free of overlap, and one
// archiver keeps up with far more than a fleet's ingest. "{archive}" cannot
// be the name of an aggregate namespace (names are [a-z0-9_-]), and its
// braces put the lease keys in the same Redis Cluster slot as the
// checkpoints (p:{archive}:ck).
const (
	// LeaseNamespace is the lease.Config.Namespace of the archive group.
	LeaseNamespace = "{archive}"
	leaseName      = "archive"
)

// claimRetry is how long a holder whose term failed waits before trying
// again, unless the lease changes first.
const claimRetry = time.Second

// claimer is the fencing of RedisCheckpoints.
type claimer interface {
	Claim(ctx context.Context, fence int64) error
}

var _ claimer = (*RedisCheckpoints)(nil)

// Workable lists the leases an archive group hands out: one, for the
// whole archive. It is the shard list of the group's lease.Manager.
func (a *Archiver) Workable(context.Context) ([]string, error) {
	return []string{leaseName}, nil
}

// RunLeased archives for as long as ls holds the archive lease, until ctx
// is done; it returns nil then (call ls.Leave after that). Each term under
// one fence first claims the checkpoints with it, so the previous holder's
// saves are refused from then on, and runs Run until the lease is lost or
// moves; then ls.Done hands the lease on. Use a Sticky manager in
// LeaseNamespace: a standby that (re)joins must not take the lease from a
// healthy holder, as every handover stops, flushes and restarts archiving.
// The checkpoints must be RedisCheckpoints. Call RunLeased once, instead of
// Run.
func (a *Archiver) RunLeased(ctx context.Context, ls *lease.Manager) error {
	ck, ok := a.ck.(claimer)
	if !ok {
		return fmt.Errorf("archiver: checkpoints %T cannot be fenced; a group needs RedisCheckpoints", a.ck)
	}
	for {
		if fence, ok := ls.Leases()[leaseName]; ok {
			if err := a.term(ctx, ls, ck, fence); err != nil {
				a.log.Warn("archive term ended", "fence", fence, "err", err)
				// Stay off until the lease changes, and retry a failed
				// claim now and then.
				select {
				case <-ls.Changes():
				case <-time.After(claimRetry):
				case <-ctx.Done():
				}
			}
			ls.Done(leaseName, fence)
		}
		if ctx.Err() != nil {
			return nil
		}
		if _, ok := ls.Leases()[leaseName]; ok {
			continue
		}
		select {
		case <-ls.Changes():
		case <-ctx.Done():
			return nil
		}
	}
}

// term is one term as the active archiver, under one fence.
func (a *Archiver) term(ctx context.Context, ls *lease.Manager, ck claimer, fence int64) error {
	if err := ck.Claim(ctx, fence); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(tctx) }()
	a.log.Info("archive lease acquired: archiving", "fence", fence)
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("archiver: %w", err)
			}
			if ctx.Err() == nil {
				return errors.New("archiver stopped on its own")
			}
			return nil
		case <-ls.Changes():
			if f, ok := ls.Leases()[leaseName]; ok && f == fence {
				continue
			}
			a.log.Info("archive lease lost or moved: stopping the archiver", "fence", fence)
			cancel()
			// Run flushes what it holds; a deposed flush is refused by
			// the fence and redone by the next holder.
			err := <-done
			if err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("archiver: %w", err)
			}
			return nil
		case <-ctx.Done():
			cancel()
			<-done
			return nil
		}
	}
}
