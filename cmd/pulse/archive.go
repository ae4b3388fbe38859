package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/archiver"
)

// startArchiver runs the archive role in g: it opens the archive store
// cfg.Archive names (default file://DATA/archive) and archives every shard
// of src. Checkpoints go to rdb under p:{archive}:ck, except with the
// embedded Redis, which forgets everything at exit: then to files under
// DATA/archive-checkpoints, since an archiver that lost its checkpoints
// would start over and write objects overlapping those already there.
// The checkpoints do not depend on cfg.Namespace: the archive holds raw
// events, and promoting a namespace must not make it start over.
func startArchiver(ctx context.Context, g *errgroup.Group, cfg serveConfig, src archiver.Source, rdb redis.UniversalClient, log *slog.Logger, reg prometheus.Registerer) error {
	raw := cfg.Archive
	if raw == "" {
		dir, err := filepath.Abs(filepath.Join(cfg.Data, "archive"))
		if err != nil {
			return fmt.Errorf("archive dir: %w", err)
		}
		raw = "file://" + dir
	}
	store, err := archive.ParseURL(ctx, raw)
	if err != nil {
		return fmt.Errorf("--archive: %w", err)
	}
	var ck archiver.Checkpoints = archiver.NewRedisCheckpoints(rdb, "")
	if cfg.Redis == "embedded" {
		ck = archiver.NewFileCheckpoints(filepath.Join(cfg.Data, "archive-checkpoints"))
	}
	a := archiver.New(src, store, ck, archiver.Config{
		Logger:     log,
		Registerer: reg,
	})
	log.Info("archiver started", "archive", raw)
	g.Go(func() error { return a.Run(ctx) })
	return nil
}
