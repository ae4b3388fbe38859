// Package ingest is the beacon endpoint: it takes collect requests, decodes,
// validates and enriches their events, and answers 202 only once the
// accepted events are durable in the stream.
package ingest

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/pulsehq/pulse/access"
	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/httperr"
	"github.com/pulsehq/pulse/stream"
	"github.com/pulsehq/pulse/uaparse"
)

// Publisher puts entries into the stream. Publish returns nil only once
// every entry is durable; on error some entries may have been written, which
// is safe because the client retries with the same event ids and the
// aggregator deduplicates. Once Publish has returned nil it no longer reads
// entries: ingest reuses their memory for the next request.
type Publisher interface {
	Publish(ctx context.Context, entries []stream.Entry) error
}

// Config configures a Handler. Zero values mean the documented defaults.
type Config struct {
	Limits event.Limits // zero fields: event defaults
	// MaxInFlight bounds the events admitted but not yet durable (default
	// 100,000); it is raised to Limits.MaxEvents if lower, so one full
	// request can always be admitted.
	MaxInFlight int64
	AdmitWait   time.Duration // how long a request waits for room before 503 (default 50ms)
	RetryAfter  time.Duration // Retry-After on 503, whole seconds, at least 1 (default 1s)
	// Sites, when set, rate-limits events per site and per site and
	// client, on POST and the pixel alike: a request whose sites are over
	// their rate, or whose client is over its share of one, gets 429 with
	// Retry-After and nothing of it is accepted (the client resends it
	// whole).
	Sites SiteLimiter
	// AllowedSites, when not empty, is the only sites accepted; an event
	// of another site is refused on its own (reason site_not_allowed).
	// Known, when set, replaces it with a set that may change at run time.
	AllowedSites []string
	Known        SiteList
	// Origins is the allowlist of the pages that may send (the Origin
	// header; for the pixel, the Referer's origin); zero: every origin.
	// A request from another page is refused whole with 403, and CORS
	// answers name only allowed origins.
	Origins access.Origins
	// WriteKeys are the keys of the sites that have one: an event of such
	// a site is accepted only when the request carries the key (X-Pulse-Key
	// or Authorization: Bearer), or has no key and comes from one of the
	// site's pages (WriteKeys.PageAllowed); a wrong key is refused from
	// anywhere. Nil: no site needs a key.
	WriteKeys *access.WriteKeys
	// DedupWindow is how long the aggregator remembers an event id; every
	// answer says it in Pulse-Dedup-Window (seconds), so that a tracker
	// served from elsewhere stops resending before the server forgets.
	// Zero: no header.
	DedupWindow time.Duration
	// Visits, when set, derives the visit fields of accepted events
	// (event.Visit: source, UTM, browser, OS, country) from the request;
	// nil leaves them empty.
	Visits     VisitEnricher
	Now        func() time.Time      // nil: time.Now
	Logger     *slog.Logger          // nil: no logging
	Registerer prometheus.Registerer // nil: metrics are kept but not registered
}

// VisitEnricher derives the visit fields of the events of one request
// from the request's User-Agent and client address: package enrich.
type VisitEnricher interface {
	EnrichAll(ctx context.Context, evs []event.Event, userAgent string, client netip.Addr) error
}

// limitAndEnrich charges the sites of the accepted events of r against
// their rates (limitSites), then sets their server fields
// (event.EnrichAll) and their visit fields, from one reading of the
// client's address. An error of the visit fields is a 503: a visitor id
// needs the day's salt, which the store could not give, and the client
// sends again.
func (h *Handler) limitAndEnrich(r *http.Request, evs []event.Event) error {
	var client netip.Addr
	if h.cfg.Sites != nil {
		client = h.cfg.Sites.ClientIP(r)
	} else if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		client = ap.Addr()
	}
	if err := h.limitSites(client, evs); err != nil {
		return err
	}
	ua := r.UserAgent()
	class := h.agents.Of(ua)
	event.EnrichAllAs(evs, h.cfg.Now(), class.device, class.bot)
	if h.cfg.Visits == nil {
		return nil
	}
	if err := h.cfg.Visits.EnrichAll(r.Context(), evs, ua, client); err != nil {
		h.m.refuse("unavailable", len(evs))
		return httperr.Wrap(http.StatusServiceUnavailable, "visitor ids unavailable, retry later", err).WithRetryAfter(h.cfg.RetryAfter)
	}
	return nil
}

// SiteLimiter says whether client may send n more events of site now,
// and if not, how long to wait. ClientIP names the client of a request
// the way the limiter's other limits do (behind trusted proxies, from
// X-Forwarded-For).
type SiteLimiter interface {
	ClientIP(r *http.Request) netip.Addr
	AllowSite(client netip.Addr, site string, n int) (bool, time.Duration)
}

// SiteList says whether events of site are accepted: msg and reason
// ("" when accepted) are the refusal of each of its events; err is a
// failure to decide, answered 503 so that the client retries. Asked once
// per site of a request, before anything reaches the stream, so a refused
// site costs no stream record and no aggregate.
type SiteList interface {
	Admit(ctx context.Context, site string) (msg, reason string, err error)
}

// Default configuration values.
const (
	DefaultMaxInFlight = 100_000
	DefaultAdmitWait   = 50 * time.Millisecond
	DefaultRetryAfter  = time.Second
)

// Handler serves the collect routes. It is safe for concurrent use.
type Handler struct {
	pub       Publisher
	cfg       Config
	sem       *semaphore.Weighted
	m         *metrics
	scratches sync.Pool // *scratch
	agents    *uaparse.Memo[agentClass]
	gate      gate
	// dedupWindow is the Pulse-Dedup-Window value, made once (nil: none).
	dedupWindow []string
}

// New returns a Handler publishing through pub.
func New(pub Publisher, cfg Config) *Handler {
	cfg.Limits = cfg.Limits.WithDefaults()
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxInFlight < int64(cfg.Limits.MaxEvents) {
		cfg.MaxInFlight = int64(cfg.Limits.MaxEvents)
	}
	if cfg.AdmitWait <= 0 {
		cfg.AdmitWait = DefaultAdmitWait
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{
		pub:       pub,
		cfg:       cfg,
		sem:       semaphore.NewWeighted(cfg.MaxInFlight),
		m:         newMetrics(cfg.Registerer),
		scratches: sync.Pool{New: func() any { return new(scratch) }},
		agents:    newAgentClasses(),
		gate:      newGate(cfg),
		dedupWindow: func() []string {
			if cfg.DedupWindow <= 0 {
				return nil
			}
			return []string{strconv.FormatFloat(cfg.DedupWindow.Seconds(), 'f', -1, 64)}
		}(),
	}
}

// Register adds POST /v1/collect, GET /v1/collect.gif, POST /api/event
// (Plausible's Events API) and their CORS preflights to r.
func (h *Handler) Register(r gin.IRouter) {
	r.POST("/v1/collect", h.wrap(h.collect, renderJSON))
	r.GET("/v1/collect.gif", h.wrap(h.gif, renderGIF))
	r.POST("/api/event", h.wrap(h.plausible, renderPlausible))
	r.OPTIONS("/v1/collect", h.preflight)
	r.OPTIONS("/v1/collect.gif", h.preflight)
	r.OPTIONS("/api/event", h.preflight)
}

// preflight answers CORS preflights. Collect takes no credentials, so any
// allowed origin may send; sendBeacon's text/plain needs no preflight, but
// fetch with application/json does. A refused origin gets 403 and no
// Access-Control-Allow-Origin.
func (h *Handler) preflight(c *gin.Context) {
	if !h.cors(c) {
		h.m.rejected.WithLabelValues(reasonOrigin).Inc()
		c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": "origin: this Origin may not send events to this server (not in --ingest-origins)"})
		return
	}
	hd := c.Writer.Header()
	hd.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
	if req := c.GetHeader("Access-Control-Request-Headers"); req != "" {
		hd.Set("Access-Control-Allow-Headers", req)
	} else {
		hd.Set("Access-Control-Allow-Headers", "Content-Type")
	}
	hd.Set("Access-Control-Max-Age", "86400")
	hd.Add("Vary", "Access-Control-Request-Headers")
	c.Status(http.StatusNoContent)
}
