package node

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/access"
	"github.com/pulsehq/pulse/ingest"
	"github.com/pulsehq/pulse/redisagg"
)

// maxHeaderBytes bounds the request line and headers (net/http answers
// 431 past it): a full pixel query, every field at its limit and percent
// encoded, fits in it; net/http's default is 1 MiB.
const maxHeaderBytes = 128 << 10

// buildTokens returns the token checker: readTok reads every site, the
// tokens of the read-tokens file read their sites, adminTok does all.
func buildTokens(h Harden, readTok, adminTok string, log *slog.Logger) (*access.Tokens, error) {
	for _, t := range []struct{ flag, tok string }{{"--read-token", readTok}, {"--admin-token", adminTok}} {
		if slices.Contains(h.Sites, t.tok) {
			return nil, fmt.Errorf("%s: the token equals a site id of --sites", t.flag)
		}
	}
	read := []access.ReadToken{{Token: readTok, Scope: access.AllSites()}}
	if h.ReadTokensFile != "" {
		more, err := access.LoadReadTokens(h.ReadTokensFile, h.Sites)
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
func ingestAccess(h Harden, cfg *ingest.Config, log *slog.Logger) error {
	cfg.Origins = access.NewOrigins(h.IngestOrigins)
	if h.WriteKeysFile != "" {
		wk, err := access.LoadWriteKeys(h.WriteKeysFile, h.Sites)
		if err != nil {
			return fmt.Errorf("--write-keys: %w", err)
		}
		wk = wk.OrOrigins(cfg.Origins)
		if bare := wk.SitesWithoutOrigins(); len(bare) > 0 {
			return fmt.Errorf("--write-keys %s: no origins for keyed sites %s: list the pages that may send without the key on the site's line (SITE=KEY https://www.example.com,*.example.com) or in --ingest-origins",
				h.WriteKeysFile, strings.Join(bare, ", "))
		}
		cfg.WriteKeys = wk
		log.Info("write keys loaded", "file", h.WriteKeysFile, "sites", wk.Len())
	}
	return nil
}

// registerOverflow exports the count of dimension values folded into
// the "(other)" value because a bucket already held MaxDimValues values or
// MaxDimBytes bytes of values, in the store of the current namespace (it
// restarts from zero at a switch).
func registerOverflow(reg prometheus.Registerer, stats func() redisagg.Stats) {
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "pulse_aggregate_dimension_overflow_total",
		Help: "Dimension values counted under (other) because their bucket already held the maximum of distinct values (1000) or of their bytes (65536).",
	}, func() float64 { return float64(stats().Overflowed) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "pulse_aggregate_sum_saturated_total",
		Help: "Sums of sum and avg metrics held at ±(2^53-1) units of their decimals, where the store can no longer add them exactly.",
	}, func() float64 { return float64(stats().Saturated) }))
}
