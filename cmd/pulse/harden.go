package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/pulsehq/pulse/access"
	"github.com/pulsehq/pulse/node"
)

// hardenFlags are the access and abuse flags of `pulse serve`.
func hardenFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "read-tokens", Sources: env("read-tokens"), Usage: "file of site-scoped read tokens, one TOKEN=site1,site2 (or TOKEN=*) per line; --read-token still reads every site"},
		&cli.StringFlag{Name: "write-keys", Sources: env("write-keys"), Usage: "file of per-site write keys, one SITE=KEY ORIGINS per line: events of SITE need X-Pulse-Key: KEY unless sent from one of ORIGINS (default: --ingest-origins, which must then be set)"},
		&cli.StringSliceFlag{Name: "allowed-sites", Sources: env("allowed-sites"), Usage: "sites accepted at ingest (default: every site)"},
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
	for _, s := range c.StringSlice("allowed-sites") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !access.IsSite(s) {
			return h, fmt.Errorf("--allowed-sites: %q is not a site id ([a-z0-9_.-]{1,64})", s)
		}
		h.AllowedSites = append(h.AllowedSites, s)
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
