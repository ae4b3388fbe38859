package node

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/archiver"
	"github.com/pulsehq/pulse/control"
	"github.com/pulsehq/pulse/lease"
)

// archiveRunner returns the archive role's runner: it archives every shard of src
// into store (openArchive: --archive, default file://DATA/archive), with
// checkpoints in ck: in Redis under p:{archive}:ck, except with the embedded
// Redis, which forgets everything at exit: then in files under
// DATA/archive-checkpoints, since an archiver that lost its checkpoints
// would start over and write objects overlapping those already there.
// The checkpoints do not depend on the namespace: the archive holds raw
// events, and promoting a namespace must not make it start over.
//
// In a group (--group, on whenever Redis is shared) every instance with the
// role competes for one lease (archiver.RunLeased): its holder archives,
// the others stand by and take over within about the lease TTL when it
// dies.
func archiveRunner(cfg Config, src archiver.Source, store archive.ObjectStore, ck archiver.Checkpoints, rdb redis.UniversalClient, log *slog.Logger, reg prometheus.Registerer) (func(context.Context) error, error) {
	if store == nil {
		return nil, fmt.Errorf("--archive: no archive store")
	}
	a := archiver.New(src, store, ck, archiver.Config{
		MaxAge:     cfg.ArchiveMaxAge,
		Logger:     log,
		Registerer: reg,
	})
	if cfg.Group.Mode != "on" {
		log.Info("archiver started", "archive", archiveURL(cfg))
		return a.Run, nil
	}
	// The aggregator group's lease manager owns the pulse_lease_* names;
	// pulse_archive_active tells this group's state.
	m, err := lease.New(rdb, lease.Config{Namespace: archiver.LeaseNamespace, Owner: cfg.Group.Owner, TTL: cfg.Group.LeaseTTL, Sticky: true, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("archive group: %w", err)
	}
	log.Info("archive role in a group: archiving while holding the archive lease", "archive", archiveURL(cfg), "owner", m.Owner(), "lease_ttl", cfg.Group.LeaseTTL)
	return func(ctx context.Context) error {
		return control.RunInGroup(ctx, m, "archive group", a.Workable, func(ctx context.Context) error { return a.RunLeased(ctx, m) }, log)
	}, nil
}
