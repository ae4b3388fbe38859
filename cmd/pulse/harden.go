package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/pulsehq/pulse/access"
	"github.com/pulsehq/pulse/node"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/sites"
)

// hardenFlags are the access and abuse flags of `pulse serve`.
func hardenFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "read-tokens", Sources: env("read-tokens"), Usage: "file of site-scoped read tokens, one TOKEN=site1,site2 (or TOKEN=*) per line; --read-token still reads every site"},
		&cli.StringFlag{Name: "write-keys", Sources: env("write-keys"), Usage: "file of per-site write keys, one SITE=KEY ORIGINS per line: events of SITE need X-Pulse-Key: KEY unless sent from one of ORIGINS (default: --ingest-origins, which must then be set)"},
		&cli.StringFlag{Name: "sites", Value: "demo", Sources: env("sites"), Usage: "sites accepted at ingest, comma-separated; an event of another site is refused and costs nothing; add more at run time with pulse sites add; * accepts any site, within --sites-max and --sites-new-rate"},
		&cli.StringSliceFlag{Name: "allowed-sites", Sources: env("allowed-sites"), Usage: "older name of --sites; when given, it replaces --sites"},
		&cli.IntFlag{Name: "sites-max", Sources: env("sites-max"), Usage: "with --sites '*': most sites the deployment admits from traffic, fleet-wide (0: default 1000); an admin can add more"},
		&cli.FloatFlag{Name: "sites-new-rate", Sources: env("sites-new-rate"), Usage: "with --sites '*': new sites one node admits per minute, in bursts of 20 (0: default 60)"},
		&cli.DurationFlag{Name: "site-idle-ttl", Value: redisagg.DefaultIdleTTL, Sources: env("site-idle-ttl"), Usage: "how long a quiet site's checkpoint and a quiet metric's delta log and counter are kept after the last event applied to them (buckets expire with their retention); at least 1s"},
		&cli.StringSliceFlag{Name: "ingest-origins", Sources: env("ingest-origins"), Usage: "Origins of the pages allowed to send events, host patterns or scheme://host (default: every origin)"},
		&cli.IntFlag{Name: "max-conns-per-ip", Sources: env("max-conns-per-ip"), Usage: "WebSocket connections per client IP (0: default 64; negative: no cap)"},
	}
}

func hardenConfigFrom(c *cli.Command) (node.Harden, error) {
	h := node.Harden{
		ReadTokensFile: c.String("read-tokens"),
		WriteKeysFile:  c.String("write-keys"),
		MaxConnsPerIP:  int(c.Int("max-conns-per-ip")),
	}
	var err error
	if h.Sites, err = parseSites(c); err != nil {
		return h, err
	}
	h.SitesMax = int(c.Int("sites-max"))
	h.SitesNewPerMinute = c.Float("sites-new-rate")
	if h.SitesMax < 0 || h.SitesNewPerMinute < 0 {
		return h, fmt.Errorf("--sites-max, --sites-new-rate: must not be negative, got %d and %g", h.SitesMax, h.SitesNewPerMinute)
	}
	for _, o := range c.StringSlice("ingest-origins") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if !access.ValidOriginPattern(o) {
			return h, fmt.Errorf("--ingest-origins: %q is not a valid pattern (host, *.host, or scheme://host)", o)
		}
		h.IngestOrigins = append(h.IngestOrigins, o)
	}
	return h, nil
}

// parseSites reads --sites, or --allowed-sites, its older name, when given.
func parseSites(c *cli.Command) ([]string, error) {
	name, list := "--sites", strings.Split(c.String("sites"), ",")
	if c.IsSet("allowed-sites") {
		name, list = "--allowed-sites", c.StringSlice("allowed-sites")
	}
	var out []string
	for _, s := range list {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if s != sites.Any && !access.IsSite(s) {
			return nil, fmt.Errorf("%s: %q is not a site id ([a-z0-9_.-]{1,64}) or *", name, s)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no site given (list the sites to accept, or * for any)", name)
	}
	return out, nil
}
