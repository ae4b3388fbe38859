package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v3"

	"github.com/pulsehq/pulse/access"
	"github.com/pulsehq/pulse/ingest"
	"github.com/pulsehq/pulse/redisagg"
)

// maxHeaderBytes bounds the request line and headers (net/http answers
// 431 past it): a full pixel query, every field at its limit and percent
// encoded, fits in it; net/http's default is 1 MiB.
const maxHeaderBytes = 128 << 10

// hardenConfig is the access and abuse settings of `pulse serve`.
type hardenConfig struct {
	ReadTokensFile string   // TOKEN=SITES lines
	WriteKeysFile  string   // SITE=KEY lines
	AllowedSites   []string // empty: every site
	IngestOrigins  []string // empty: every origin
	MaxConnsPerIP  int      // 0: default; < 0: no cap
}

func hardenFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "read-tokens", Sources: env("read-tokens"), Usage: "file of site-scoped read tokens, one TOKEN=site1,site2 (or TOKEN=*) per line; --read-token still reads every site"},
		&cli.StringFlag{Name: "write-keys", Sources: env("write-keys"), Usage: "file of per-site write keys, one SITE=KEY per line: events of SITE without a browser Origin need X-Pulse-Key: KEY"},
		&cli.StringSliceFlag{Name: "allowed-sites", Sources: env("allowed-sites"), Usage: "sites accepted at ingest (default: every site)"},
		&cli.StringSliceFlag{Name: "ingest-origins", Sources: env("ingest-origins"), Usage: "Origins of the pages allowed to send events, host patterns or scheme://host (default: every origin)"},
		&cli.IntFlag{Name: "max-conns-per-ip", Sources: env("max-conns-per-ip"), Usage: "WebSocket connections per client IP (0: default 64; negative: no cap)"},
	}
}

func hardenConfigFrom(c *cli.Command) (hardenConfig, error) {
	h := hardenConfig{
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

// buildTokens returns the token checker: readTok reads every site, the
// tokens of the read-tokens file read their sites, adminTok does all.
func buildTokens(h hardenConfig, readTok, adminTok string, log *slog.Logger) (*access.Tokens, error) {
	read := []access.ReadToken{{Token: readTok, Scope: access.AllSites()}}
	if h.ReadTokensFile != "" {
		more, err := access.LoadReadTokens(h.ReadTokensFile)
		if err != nil {
			return nil, fmt.Errorf("--read-tokens: %w", err)
		}
		read = append(read, more...)
		log.Info("site-scoped read tokens loaded", "file", h.ReadTokensFile, "tokens", len(more))
	}
	t, err := access.New(adminTok, read)
	if err != nil {
		return nil, fmt.Errorf("--read-tokens %s: a token is given twice, or equals --read-token", h.ReadTokensFile)
	}
	return t, nil
}

// ingestAccess fills the access fields of an ingest config.
func ingestAccess(h hardenConfig, cfg *ingest.Config, log *slog.Logger) error {
	cfg.AllowedSites = h.AllowedSites
	cfg.Origins = access.NewOrigins(h.IngestOrigins)
	if h.WriteKeysFile != "" {
		wk, err := access.LoadWriteKeys(h.WriteKeysFile)
		if err != nil {
			return fmt.Errorf("--write-keys: %w", err)
		}
		cfg.WriteKeys = wk
		log.Info("write keys loaded", "file", h.WriteKeysFile, "sites", wk.Len())
	}
	return nil
}

// registerOverflow exports the count of dimension values folded into
// the "(other)" value because a bucket already held MaxDimValues values,
// in the store of the current namespace (it restarts from zero at a switch).
func registerOverflow(reg prometheus.Registerer, stats func() redisagg.Stats) {
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "pulse_aggregate_dimension_overflow_total",
		Help: "Dimension values counted under (other) because their bucket already held the maximum of distinct values (1000).",
	}, func() float64 { return float64(stats().Overflowed) }))
}
