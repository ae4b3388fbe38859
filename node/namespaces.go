package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/archiver"
	"github.com/pulsehq/pulse/control"
	"github.com/pulsehq/pulse/namespace"
	"github.com/pulsehq/pulse/rowdir"
)

// startNamespaces opens the namespace registry and the current namespace
// (package control), and the archive (for replay and the archive role).
// The runtime's Run starts the live aggregator with the aggregate role.
func startNamespaces(ctx context.Context, cfg Config, rdb redis.UniversalClient, st streamBackend, log *slog.Logger, reg prometheus.Registerer) (*control.Runtime, archive.ObjectStore, archiver.Checkpoints, error) {
	metricsConfig := ""
	if cfg.MetricsConfig != "" {
		b, err := os.ReadFile(cfg.MetricsConfig)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--metrics-config: %w", err)
		}
		metricsConfig = string(b)
	}
	ccfg := control.Config{
		Redis: rdb, Registry: registryBackend(cfg, rdb), Namespace: cfg.Namespace, MetricsConfig: metricsConfig,
		Volatile: cfg.Redis == "embedded", Stream: st, Aggregate: cfg.Roles["aggregate"],
		DedupWindow: cfg.DedupWindow, AllowedLateness: cfg.AllowedLateness, IdleTTL: cfg.SiteIdleTTL, StatsCacheBytes: statsCache(cfg.StatsCacheBytes),
		SiteZones: cfg.SiteZones, Logger: log.With("part", "namespace"), Registerer: reg,
	}
	if cfg.Redis == "embedded" {
		// The embedded Redis keeps nothing across restarts and the rows
		// are rebuilt with it from the stream: start them afresh.
		ccfg.RowDir = filepath.Join(cfg.Data, "rows")
		if err := rowdir.Reset(ccfg.RowDir); err != nil {
			return nil, nil, nil, err
		}
	}
	if cfg.Group.Mode == "on" {
		ccfg.Group = &control.Group{Owner: cfg.Group.Owner, LeaseTTL: cfg.Group.LeaseTTL}
	}
	var store archive.ObjectStore
	var ck archiver.Checkpoints
	if st != nil {
		var err error
		store, ck, err = openArchive(ctx, cfg, rdb)
		switch {
		case err != nil && cfg.Roles["archive"]:
			return nil, nil, nil, err
		case err != nil:
			log.Warn("archive unavailable: replay and verify read the stream only", "err", err)
		default:
			ccfg.Archive, ccfg.ArchiveCheckpoints = store, ck
		}
	}
	ns, err := control.New(ctx, ccfg)
	if err != nil {
		return nil, nil, nil, err
	}
	log.Info("namespace", "current", ns.Current().Info.Name)
	return ns, store, ck, nil
}

// registryBackend keeps the registry where it outlives the aggregates: in
// the data dir with the embedded Redis (which forgets everything at exit),
// in Redis otherwise.
func registryBackend(cfg Config, rdb redis.UniversalClient) namespace.Backend {
	if cfg.Redis == "embedded" {
		return namespace.NewFileBackend(filepath.Join(cfg.Data, "namespaces.json"))
	}
	return namespace.NewRedisBackend(rdb)
}

// openArchive opens the archive store and the archiver's checkpoints that
// --archive and --redis name; the archiver writes them, replay reads them.
func openArchive(ctx context.Context, cfg Config, rdb redis.UniversalClient) (archive.ObjectStore, archiver.Checkpoints, error) {
	store, err := archive.ParseURL(ctx, archiveURL(cfg))
	if err != nil {
		return nil, nil, fmt.Errorf("--archive: %w", err)
	}
	var ck archiver.Checkpoints = archiver.NewRedisCheckpoints(rdb, "")
	if cfg.Redis == "embedded" {
		ck = archiver.NewFileCheckpoints(filepath.Join(cfg.Data, "archive-checkpoints"))
	}
	return store, ck, nil
}

// archiveURL is the archive --archive names, default file://DATA/archive.
func archiveURL(cfg Config) string {
	if cfg.Archive != "" {
		return cfg.Archive
	}
	dir, err := filepath.Abs(filepath.Join(cfg.Data, "archive"))
	if err != nil {
		dir = filepath.Join(cfg.Data, "archive")
	}
	return "file://" + dir
}

// statsCache is control.Config.StatsCacheBytes for the flag's value: the
// flag's 0 is "no cache", the engine's 0 its default.
func statsCache(flag int64) int64 {
	if flag <= 0 {
		return -1
	}
	return flag
}
