package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/archiver"
	"github.com/pulsehq/pulse/lease"
)

// The archive role of a group is one lease, for one "shard" standing for the
// whole archive, in its own lease namespace. "{archive}" cannot be the name
// of an aggregate namespace (names are [a-z0-9_-]), and its
// braces put the lease keys in the same Redis Cluster slot as the
// archiver's checkpoints (p:{archive}:ck).
const (
	archiveLeaseNS = "{archive}"
	archiveLease   = "archive"
)

// startArchiver runs the archive role in g: it archives every shard of src
// into store (openArchive: --archive, default file://DATA/archive), with
// checkpoints in ck: in Redis under p:{archive}:ck, except with the embedded
// Redis, which forgets everything at exit: then in files under
// DATA/archive-checkpoints, since an archiver that lost its checkpoints
// would start over and write objects overlapping those already there.
// The checkpoints do not depend on the namespace: the archive holds raw
// events, and promoting a namespace must not make it start over.
//
// In a group (--group, on whenever Redis is shared) every instance with the
// role competes for one lease: its holder archives, the others stand by and
// take over within about the lease TTL when it dies. One archiver keeps up
// with far more than a fleet's ingest (docs/benchmarks.md), and one writer
// per shard is what keeps object boundaries, hence the archive, free of
// overlap.
func startArchiver(ctx context.Context, g *errgroup.Group, cfg serveConfig, src archiver.Source, store archive.ObjectStore, ck archiver.Checkpoints, rdb redis.UniversalClient, log *slog.Logger, reg prometheus.Registerer) error {
	if store == nil {
		return fmt.Errorf("--archive: no archive store")
	}
	a := archiver.New(src, store, ck, archiver.Config{
		MaxAge:     cfg.ArchiveMaxAge,
		Logger:     log,
		Registerer: reg,
	})
	// Across a fleet the sum of pulse_archive_active is 1, or the archive
	// falls behind.
	active := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "pulse_archive_active",
		Help: "1 while this instance archives (alone, or as the group's holder of the archive lease), 0 while it stands by.",
	})
	if err := reg.Register(active); err != nil {
		return fmt.Errorf("archive role: register metrics: %w", err)
	}
	if cfg.Group.Mode != "on" {
		log.Info("archiver started", "archive", archiveURL(cfg))
		g.Go(func() error {
			active.Set(1)
			defer active.Set(0)
			return a.Run(ctx)
		})
		return nil
	}
	fenced, ok := ck.(checkpointClaimer)
	if !ok {
		return fmt.Errorf("archive role in a group: checkpoints %T cannot be fenced", ck)
	}
	// The aggregator group's lease manager owns the pulse_lease_* names;
	// pulse_archive_active tells this group's state.
	// Sticky: a standby that (re)joins must not take the lease from a
	// healthy holder; every handover stops, flushes and restarts archiving.
	m, err := lease.New(rdb, lease.Config{Namespace: archiveLeaseNS, Owner: cfg.Group.Owner, TTL: cfg.Group.LeaseTTL, Sticky: true, Logger: log})
	if err != nil {
		return fmt.Errorf("archive group: %w", err)
	}
	log.Info("archive role in a group: archiving while holding the archive lease", "archive", archiveURL(cfg), "owner", m.Owner(), "lease_ttl", cfg.Group.LeaseTTL)
	g.Go(func() error {
		lg, lctx := errgroup.WithContext(ctx)
		lg.Go(func() error {
			return m.Run(lctx, func(context.Context) ([]string, error) { return []string{archiveLease}, nil })
		})
		lg.Go(func() error {
			return archiveWhileLeased(lctx, m, fenced, a.Run, active, log)
		})
		err := lg.Wait()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if lerr := m.Leave(sctx); lerr != nil {
			log.Warn("leave the archive group", "err", lerr)
		}
		return err
	})
	return nil
}

// checkpointClaimer is the fencing of archiver.RedisCheckpoints.
type checkpointClaimer interface {
	Claim(ctx context.Context, fence int64) error
}

// archiveLeases is the part of lease.Manager the archive group uses.
type archiveLeases interface {
	Leases() map[string]int64
	Changes() <-chan struct{}
	Done(shard string, fence int64)
}

// archiveWhileLeased runs run (the archiver) for as long as ls holds the
// archive lease with one fence: it claims the checkpoints with that fence
// first, so the previous holder's saves are refused from then on, and
// stops run when the lease is lost or moves, then hands the lease back
// (Done) once run returned. It returns nil when ctx is done.
func archiveWhileLeased(ctx context.Context, ls archiveLeases, ck checkpointClaimer, run func(context.Context) error, active prometheus.Gauge, log *slog.Logger) error {
	const retry = time.Second
	for {
		if fence, ok := ls.Leases()[archiveLease]; ok {
			if err := archiveTerm(ctx, ls, ck, fence, run, active, log); err != nil {
				log.Warn("archive term ended", "fence", fence, "err", err)
				// Stay off until the lease changes, and retry a
				// failed claim now and then.
				select {
				case <-ls.Changes():
				case <-time.After(retry):
				case <-ctx.Done():
				}
			}
			ls.Done(archiveLease, fence)
		}
		if ctx.Err() != nil {
			return nil
		}
		if _, ok := ls.Leases()[archiveLease]; ok {
			continue
		}
		select {
		case <-ls.Changes():
		case <-ctx.Done():
			return nil
		}
	}
}

// archiveTerm is one term as the active archiver, under one fence.
func archiveTerm(ctx context.Context, ls archiveLeases, ck checkpointClaimer, fence int64, run func(context.Context) error, active prometheus.Gauge, log *slog.Logger) error {
	if err := ck.Claim(ctx, fence); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(tctx) }()
	active.Set(1)
	defer active.Set(0)
	log.Info("archive lease acquired: archiving", "fence", fence)
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
			if f, ok := ls.Leases()[archiveLease]; ok && f == fence {
				continue
			}
			log.Info("archive lease lost or moved: stopping the archiver", "fence", fence)
			cancel()
			// run flushes what it holds; a deposed flush is refused by
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
