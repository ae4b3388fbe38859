package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/pulsehq/pulse/node"
)

// groupFlags are how the aggregate role shares the shards with other
// instances (docs/scaling.md).
func groupFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "group", Value: "auto", Usage: "run the aggregate role as one of a group of instances sharing the shards through leases in Redis, and the archive role as one active archiver with standbys: on, off, or auto (on unless --redis is embedded)"},
		&cli.DurationFlag{Name: "lease-ttl", Value: 10 * time.Second, Usage: "shard lease TTL in a group: a dead instance's shards move after about TTL + TTL/3"},
		&cli.StringFlag{Name: "owner", Usage: "this instance's id in the group (default hostname-pid-random)"},
	}
}

func groupConfigFrom(c *cli.Command, redisURL string) (node.Group, error) {
	g := node.Group{Mode: c.String("group"), LeaseTTL: c.Duration("lease-ttl"), Owner: c.String("owner")}
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
