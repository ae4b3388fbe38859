package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/archiver"
)

// startArchiver runs the archive role in g: it archives every shard of src
// into store (openArchive: --archive, default file://DATA/archive), with
// checkpoints in ck: in Redis under p:{archive}:ck, except with the embedded
// Redis, which forgets everything at exit: then in files under
// DATA/archive-checkpoints, since an archiver that lost its checkpoints
// would start over and write objects overlapping those already there.
// The checkpoints do not depend on the namespace: the archive holds raw
// events, and promoting a namespace must not make it start over.
func startArchiver(ctx context.Context, g *errgroup.Group, cfg serveConfig, src archiver.Source, store archive.ObjectStore, ck archiver.Checkpoints, log *slog.Logger, reg prometheus.Registerer) error {
	if store == nil {
		return fmt.Errorf("--archive: no archive store")
	}
	a := archiver.New(src, store, ck, archiver.Config{
		MaxAge:     cfg.ArchiveMaxAge,
		Logger:     log,
		Registerer: reg,
	})
	log.Info("archiver started", "archive", archiveURL(cfg))
	g.Go(func() error { return a.Run(ctx) })
	return nil
}
