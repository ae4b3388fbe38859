package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/pulsehq/pulse/node"
	"github.com/pulsehq/pulse/stats"
)

func serveCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "addr", Value: ":8080", Usage: "HTTP listen address"},
		&cli.StringFlag{Name: "data", Value: "./data", Usage: "data directory (local stream, tokens, local archive)"},
		&cli.StringFlag{Name: "roles", Value: strings.Join(node.AllRoles(), ","), Usage: "roles to run: ingest,aggregate,push,archive"},
		&cli.StringFlag{Name: "stream", Value: "local", Usage: "stream: local or kinesis://NAME"},
		&cli.StringFlag{Name: "kinesis-efo", Usage: "read a kinesis:// stream with enhanced fan-out as this consumer name, registered if missing (empty: poll GetRecords)"},
		&cli.StringFlag{Name: "redis", Value: "embedded", Usage: "aggregate store: embedded, redis://HOST:PORT/DB or redis-cluster://H1,H2"},
		&cli.StringFlag{Name: "archive", Value: "", Usage: "archive: file://DIR or s3://BUCKET/PREFIX (default file://DATA/archive)"},
		&cli.IntFlag{Name: "shards", Value: 4, Usage: "shards of the local stream (fixed when it is created)"},
		&cli.StringFlag{Name: "read-token", Usage: "token for REST and WebSocket reads (generated and kept in the data dir when empty)"},
		&cli.StringFlag{Name: "admin-token", Usage: "token for admin actions (generated and kept in the data dir when empty)"},
		&cli.StringFlag{Name: "public-url", Usage: "base URL printed for the dashboard (default http://localhost:PORT)"},
		&cli.StringSliceFlag{Name: "allowed-origins", Usage: "Origins allowed to open WebSockets (default: same host)"},
		&cli.StringFlag{Name: "namespace", Value: "v1", Usage: "aggregate namespace of a new registry (later, the registry names the current one: pulse promote)"},
		&cli.DurationFlag{Name: "dedup-window", Value: 10 * time.Minute, Usage: "how long an event id is remembered for deduplication, in receive time; also served to the tracker (in /tracker.js and the Pulse-Dedup-Window header), which stops resending at 0.8 of it"},
		&cli.DurationFlag{Name: "allowed-lateness", Value: 24 * time.Hour, Usage: "events older than this (by receive time) are not aggregated"},
		&cli.DurationFlag{Name: "retention-age", Value: 0, Usage: "local stream retention by age (default: the longest aggregate retention, so a restart rebuilds exactly)"},
		&cli.Int64Flag{Name: "retention-bytes", Value: 10 << 30, Usage: "local stream retention by size"},
		&cli.StringFlag{Name: "site-timezones", Usage: "time zones of sites, site=Zone,... (IANA names, e.g. demo=Europe/Berlin): a Stats API query (and the dashboard) that names no timezone is answered in its site's; other sites in UTC"},
		&cli.StringFlag{Name: "geoip", Usage: "MaxMind DB file (GeoLite2/GeoIP2 Country or City) for the country of a client address at ingest (default: the bundled geo-whois-asn-country database, docs/geoip.md)"},
		&cli.Int64Flag{Name: "stats-cache-bytes", Value: 256 << 20, Usage: "bytes of Stats API rows a query node keeps in columns between queries (about 15-25 per event, 48 per visitor); 0: none"},
		&cli.StringFlag{Name: "metrics-config", Usage: "YAML file of metric definitions and steps (default: the built-in metrics; docs/metrics.example.yaml shows every key)"},
		&cli.FloatFlag{Name: "rate-ip", Value: 0, Usage: "requests/s per client IP on ingest and reads (0: default 200/s; negative: off)"},
		&cli.FloatFlag{Name: "rate-site", Value: 0, Usage: "events/s per site at ingest (0: default 5000/s; negative: off)"},
		&cli.FloatFlag{Name: "rate-site-client-share", Value: 0, Usage: "share of a site's rate and burst one client IP may take, so one sender cannot starve the others (0: default 0.25; 1: no share, one client may take it all)"},
		&cli.StringSliceFlag{Name: "trusted-proxies", Usage: "CIDRs of proxies whose X-Forwarded-For is believed"},
		&cli.DurationFlag{Name: "admit-wait", Value: 0, Usage: "how long an ingest request waits for room under --max-inflight before its 503 (0: default 50ms)"},
		&cli.Int64Flag{Name: "max-inflight", Value: 0, Usage: "events admitted by ingest and not yet durable in the stream; past it requests wait briefly, then get 503 with Retry-After (0: default 100000)"},
		&cli.DurationFlag{Name: "archive-max-age", Value: 5 * time.Minute, Usage: "how long an event may wait in the archiver before its object is written"},
		&cli.DurationFlag{Name: "drain-delay", Value: 5 * time.Second, Usage: "at SIGTERM, how long /readyz answers 503 while requests are still served, so load balancers stop sending before the listener closes (at least their health-check interval times unhealthy threshold; 0 or less: close at once)"},
		&cli.StringFlag{Name: "admin-addr", Usage: "listen address of the admin listener with /debug/pprof (off when empty; keep it on loopback)"},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
	}
	flags = append(flags, groupFlags()...)
	for _, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			f.Sources = env(f.Name)
		case *cli.IntFlag:
			f.Sources = env(f.Name)
		case *cli.Int64Flag:
			f.Sources = env(f.Name)
		case *cli.DurationFlag:
			f.Sources = env(f.Name)
		case *cli.FloatFlag:
			f.Sources = env(f.Name)
		case *cli.StringSliceFlag:
			f.Sources = env(f.Name)
		}
	}
	flags = append(flags, hardenFlags()...)
	return &cli.Command{
		Name:  "serve",
		Usage: "run Pulse (all roles by default, on embedded defaults: no AWS, no servers to install)",
		Flags: flags,
		Action: func(ctx context.Context, c *cli.Command) error {
			cfg, err := serveConfigFrom(c)
			if err != nil {
				return err
			}
			log, err := newLogger(cfg.LogFormat, cfg.LogLevel)
			if err != nil {
				return err
			}
			return node.Run(ctx, cfg, log)
		},
	}
}

// serveConfigFrom maps the flags of c onto a node.Config and checks them,
// naming the flag of a value that cannot work.
func serveConfigFrom(c *cli.Command) (node.Config, error) {
	cfg := node.Config{
		Addr:            c.String("addr"),
		Data:            c.String("data"),
		Stream:          c.String("stream"),
		KinesisEFO:      c.String("kinesis-efo"),
		Redis:           c.String("redis"),
		Archive:         c.String("archive"),
		Shards:          int(c.Int("shards")),
		ReadToken:       c.String("read-token"),
		AdminToken:      c.String("admin-token"),
		PublicURL:       c.String("public-url"),
		AllowedOrigins:  c.StringSlice("allowed-origins"),
		Namespace:       c.String("namespace"),
		DedupWindow:     c.Duration("dedup-window"),
		AllowedLateness: c.Duration("allowed-lateness"),
		RetentionAge:    c.Duration("retention-age"),
		RetentionBytes:  c.Int64("retention-bytes"),
		LogFormat:       c.String("log-format"),
		LogLevel:        c.String("log-level"),
		MetricsConfig:   c.String("metrics-config"),
		RateIP:          c.Float("rate-ip"),
		RateSite:        c.Float("rate-site"),
		SiteClientShare: c.Float("rate-site-client-share"),
		AdminAddr:       c.String("admin-addr"),
		MaxInFlight:     c.Int64("max-inflight"),
		AdmitWait:       c.Duration("admit-wait"),
		ArchiveMaxAge:   c.Duration("archive-max-age"),
		DrainDelay:      c.Duration("drain-delay"),
		SiteIdleTTL:     c.Duration("site-idle-ttl"),
		StatsCacheBytes: c.Int64("stats-cache-bytes"),
		GeoIP:           c.String("geoip"),
	}
	var err error
	if cfg.Harden, err = hardenConfigFrom(c); err != nil {
		return cfg, err
	}
	if cfg.Group, err = groupConfigFrom(c, cfg.Redis); err != nil {
		return cfg, err
	}
	if cfg.TrustedProxies, err = parseTrustedProxies(c.StringSlice("trusted-proxies")); err != nil {
		return cfg, err
	}
	if cfg.Roles, err = parseRoles(c.String("roles")); err != nil {
		return cfg, err
	}
	if cfg.SiteZones, err = stats.ParseSiteZones(c.String("site-timezones")); err != nil {
		return cfg, fmt.Errorf("--site-timezones: %w", err)
	}
	if cfg.KinesisEFO != "" && !strings.HasPrefix(cfg.Stream, "kinesis://") {
		return cfg, fmt.Errorf("--kinesis-efo: needs --stream kinesis://NAME, got %q", cfg.Stream)
	}
	if cfg.Shards < 1 || cfg.Shards > 1024 {
		return cfg, fmt.Errorf("--shards: %d is out of range 1..1024", cfg.Shards)
	}
	if cfg.AllowedLateness < time.Hour {
		return cfg, fmt.Errorf("--allowed-lateness: %s is under the 1h minimum (offline trackers deliver late)", cfg.AllowedLateness)
	}
	if cfg.SiteIdleTTL < time.Second {
		return cfg, fmt.Errorf("--site-idle-ttl: %s is under the 1s minimum", cfg.SiteIdleTTL)
	}
	if cfg.DedupWindow <= 0 {
		return cfg, fmt.Errorf("--dedup-window: must be positive, got %s", cfg.DedupWindow)
	}
	return cfg, nil
}

// parseTrustedProxies reads --trusted-proxies: CIDRs, or addresses
// standing for themselves.
func parseTrustedProxies(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range ss {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, fmt.Errorf("--trusted-proxies: %q is not a CIDR or an address", p)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, pfx)
	}
	return out, nil
}

// parseRoles reads --roles: a comma-separated set of node.AllRoles.
func parseRoles(s string) (map[string]bool, error) {
	roles := map[string]bool{}
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !slices.Contains(node.AllRoles(), r) {
			return nil, fmt.Errorf("--roles: unknown role %q (want some of %s)", r, strings.Join(node.AllRoles(), ","))
		}
		roles[r] = true
	}
	if len(roles) == 0 {
		return nil, fmt.Errorf("--roles: no role given (want some of %s)", strings.Join(node.AllRoles(), ","))
	}
	return roles, nil
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}
