package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v3"
	"golang.org/x/sync/errgroup"

	"github.com/pulsehq/pulse/aggregator"
	"github.com/pulsehq/pulse/lease"
)

// groupConfig is how the aggregate role shares the shards with other
// instances (docs/scaling.md).
type groupConfig struct {
	Mode     string // auto, on or off
	LeaseTTL time.Duration
	Owner    string
}

func groupFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "group", Value: "auto", Usage: "run the aggregate role as one of a group of instances sharing the shards through leases in Redis, and the archive role as one active archiver with standbys: on, off, or auto (on unless --redis is embedded)"},
		&cli.DurationFlag{Name: "lease-ttl", Value: 10 * time.Second, Usage: "shard lease TTL in a group: a dead instance's shards move after about TTL + TTL/3"},
		&cli.StringFlag{Name: "owner", Usage: "this instance's id in the group (default hostname-pid-random)"},
	}
}

func groupConfigFrom(c *cli.Command, redisURL string) (groupConfig, error) {
	g := groupConfig{Mode: c.String("group"), LeaseTTL: c.Duration("lease-ttl"), Owner: c.String("owner")}
	switch g.Mode {
	case "auto":
		g.Mode = "on"
		if redisURL == "embedded" {
			g.Mode = "off"
		}
	case "on":
		if redisURL == "embedded" {
			return g, fmt.Errorf("--group on: the embedded Redis lives in one process; a group needs a shared --redis")
		}
	case "off":
	default:
		return g, fmt.Errorf("--group: %q is not auto, on or off", g.Mode)
	}
	if g.LeaseTTL < 100*time.Millisecond {
		return g, fmt.Errorf("--lease-ttl: %s is under 100ms", g.LeaseTTL)
	}
	return g, nil
}

// runAggregator runs the aggregate role: alone over every shard, or in a
// group over the shards this instance holds leases for. In a group the
// workers stop first and then the instance leaves, so the others take its
// shards at their next round rather than after the lease TTL.
func runAggregator(ctx context.Context, gc groupConfig, ns string, agg *aggregator.Aggregator, rdb redis.UniversalClient, log *slog.Logger, reg prometheus.Registerer) error {
	if gc.Mode != "on" {
		return agg.Run(ctx)
	}
	m, err := lease.New(rdb, lease.Config{Namespace: ns, Owner: gc.Owner, TTL: gc.LeaseTTL, Logger: log, Registerer: reg})
	if err != nil {
		return fmt.Errorf("aggregator group: %w", err)
	}
	log.Info("aggregating in a group (shard leases)", "owner", m.Owner(), "lease_ttl", gc.LeaseTTL)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.Run(gctx, agg.Workable) })
	g.Go(func() error { return agg.RunLeased(gctx, m) })
	err = g.Wait()
	lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if lerr := m.Leave(lctx); lerr != nil {
		log.Warn("leave the aggregator group", "err", lerr)
	} else {
		log.Info("left the aggregator group", "owner", m.Owner())
	}
	return err
}
