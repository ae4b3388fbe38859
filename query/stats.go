package query

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/access"
	"github.com/pulsehq/pulse/internal/httperr"
	"github.com/pulsehq/pulse/stats"
)

// Answerer answers Stats API queries: *statsquery.Engine.
type Answerer interface {
	Answer(ctx context.Context, q stats.Query) (stats.Answer, error)
}

// statsRoutes are the Stats API's paths: Pulse's, and Plausible's, so that
// clients written for Plausible's Stats API v2 work unchanged.
var statsRoutes = []string{"/v1/stats", "/api/v2/query"}

// StatsRoutes returns the paths Register serves the Stats API on (POST).
func StatsRoutes() []string { return append([]string(nil), statsRoutes...) }

// statsQuery answers POST /v1/stats: the body parsed by stats.Parse, the
// site checked against the token's scope (RequireRead left it), the answer
// from the rows. A query the API refuses is a 400 whose body names the
// part: {"error":"part: message","part":"part"}.
func (h *Handler) statsQuery(c *gin.Context) error {
	// One byte past the bound, so that Parse names an oversized body.
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, stats.MaxBodyBytes+1))
	if err != nil {
		return refuse(c, &stats.Error{Part: "body", Msg: "reading it failed: " + err.Error()})
	}
	q, err := stats.Parse(h.cfg.SiteZones.Body(body), h.cfg.Now())
	if err != nil {
		return refuse(c, err)
	}
	if !access.ScopeOf(c.Request).Allows(q.Site) {
		c.JSON(http.StatusForbidden, access.Forbidden(q.Site))
		return nil
	}
	if h.stats == nil {
		return httperr.New(http.StatusServiceUnavailable, "stats: this node does not answer the Stats API")
	}
	ans, err := h.stats.Answer(c.Request.Context(), q)
	if err != nil {
		return refuse(c, err)
	}
	c.JSON(http.StatusOK, ans)
	return nil
}

// refuse answers a *stats.Error 400 naming its part, and passes any other
// error on (the store's: 503).
func refuse(c *gin.Context, err error) error {
	var se *stats.Error
	if !errors.As(err, &se) {
		return err
	}
	c.JSON(http.StatusBadRequest, gin.H{"error": se.Error(), "part": se.Part})
	return nil
}
