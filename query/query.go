// Package query serves the REST snapshot queries: the metric catalog, series
// (GET /v1/query) and top-K (GET /v1/top), the simple form, and the Stats
// API (POST /v1/stats, alias /api/v2/query), validating every parameter and
// naming the bad one in a 400.
package query

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/internal/httperr"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/stats"
)

// Store is what the handlers read: *redisagg.Store.
type Store interface {
	Series(ctx context.Context, q redisagg.SeriesQuery) (redisagg.Result, error)
	Top(ctx context.Context, q redisagg.TopQuery) ([]redisagg.TopEntry, error)
}

// Config configures a Handler. Zero values mean the documented defaults.
type Config struct {
	// Now gives "now" for relative times; nil means time.Now.
	Now func() time.Time
	// TargetBuckets is the most buckets the default step gives; default 1000.
	TargetBuckets int
	// MaxBuckets is the most buckets a query may ask for; default 5000.
	MaxBuckets int
	// MaxLimit bounds group_by limit (default 100); MaxK bounds top k (default 1000).
	MaxLimit, MaxK int
	// Logger logs store failures; nil means no logging.
	Logger *slog.Logger
	// Stats answers the Stats API (POST /v1/stats); nil answers it 503.
	Stats Answerer
	// SiteZones answer a query that names no timezone in its site's zone.
	SiteZones stats.SiteZones
}

// Handler serves the query routes. It is safe for concurrent use.
type Handler struct {
	st    Store
	stats Answerer
	cat   *metric.Catalog
	cfg   Config
	log   *slog.Logger
}

// New returns a Handler reading st for the metrics of cat.
func New(st Store, cat *metric.Catalog, cfg Config) *Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TargetBuckets <= 0 {
		cfg.TargetBuckets = 1000
	}
	if cfg.MaxBuckets <= 0 {
		cfg.MaxBuckets = redisagg.MaxBuckets
	}
	if cfg.MaxLimit <= 0 {
		cfg.MaxLimit = 100
	}
	if cfg.MaxK <= 0 {
		cfg.MaxK = 1000
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{st: st, stats: cfg.Stats, cat: cat, cfg: cfg, log: log}
}

// Register adds GET /v1/metrics, /v1/query and /v1/top, and POST
// /v1/stats with its alias /api/v2/query, to r; put the read token check
// (access.Tokens.RequireRead) in front of r.
func (h *Handler) Register(r gin.IRouter) {
	r.GET("/v1/metrics", h.wrap(h.metrics))
	r.GET("/v1/query", h.wrap(h.query))
	r.GET("/v1/top", h.wrap(h.top))
	for _, p := range statsRoutes {
		r.POST(p, h.wrap(h.statsQuery))
	}
}

// bad is the error of a bad request parameter: 400 {"error":"param: msg"}.
func bad(param, msg string) error { return httperr.BadRequest(param + ": " + msg) }

// wrap turns a handler's error into a status and a JSON body.
func (h *Handler) wrap(f func(c *gin.Context) error) gin.HandlerFunc {
	return httperr.Handle(f, httperr.Classify(classify), httperr.Log(h.log, "query failed"))
}

// classify answers a query the store refused 400, and any other store
// failure 503: the store is the only thing the handlers wait for.
func classify(err error) *httperr.Error {
	if errors.Is(err, redisagg.ErrQuery) {
		return httperr.Wrap(http.StatusBadRequest, "query: "+err.Error(), err)
	}
	return httperr.Wrap(http.StatusServiceUnavailable, "store: the aggregate store did not answer, try again", err)
}
