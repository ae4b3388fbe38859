package ingest

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/access"
	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/httperr"
)

// Reasons of access refusals, in rejects and in pulse_ingest_rejected_total.
const (
	reasonSite     = "site_not_allowed"
	reasonWriteKey = "write_key"
	reasonOrigin   = "origin"
)

// gate applies Config.Known (or AllowedSites), Config.Origins and
// Config.WriteKeys.
type gate struct {
	sites   SiteList // nil: every site
	origins access.Origins
	keys    *access.WriteKeys
}

func newGate(cfg Config) gate {
	g := gate{sites: cfg.Known, origins: cfg.Origins, keys: cfg.WriteKeys}
	if g.sites == nil && len(cfg.AllowedSites) > 0 {
		l := make(staticSites, len(cfg.AllowedSites))
		for _, s := range cfg.AllowedSites {
			l[s] = struct{}{}
		}
		g.sites = l
	}
	return g
}

// staticSites is Config.AllowedSites as a SiteList.
type staticSites map[string]struct{}

func (l staticSites) Admit(_ context.Context, site string) (msg, reason string, err error) {
	if _, ok := l[site]; ok {
		return "", "", nil
	}
	return "site: " + quote(site) + " is not accepted by this server (not in --sites)", reasonSite, nil
}

// browserOrigin returns the origin a browser declared for r: the Origin
// header, or for the pixel (an image request, which carries no Origin)
// the scheme://host of Referer. "" means r does not come from a page.
func browserOrigin(r *http.Request, pixel bool) string {
	if o := r.Header.Get("Origin"); o != "" {
		return o
	}
	if !pixel {
		return ""
	}
	u, err := url.Parse(r.Header.Get("Referer"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// checkOrigin refuses, with 403, a request from a page whose origin is
// not on the allowlist.
func (h *Handler) checkOrigin(r *http.Request, pixel bool) error {
	if h.gate.origins.Any() {
		return nil
	}
	o := browserOrigin(r, pixel)
	if o == "" || h.gate.origins.Allowed(o, r.Host) {
		return nil
	}
	h.m.rejected.WithLabelValues(reasonOrigin).Inc()
	return httperr.New(http.StatusForbidden,
		"origin: "+quote(o)+" may not send events to this server (not in --ingest-origins)")
}

// admit keeps the events whose site may send from r, and adds a Reject
// for each other one; idx holds the request index of each event. denied
// reports whether any event was refused here; err is a failure to decide
// (the site list could not be read).
func (h *Handler) admit(r *http.Request, pixel bool, evs []event.Event, idx []int, rejects []event.Reject) (kept []event.Event, _ []event.Reject, denied bool, err error) {
	g := &h.gate
	if g.sites == nil && g.keys.Len() == 0 {
		return evs, rejects, false, nil
	}
	key := access.KeyFrom(r)
	page := browserOrigin(r, pixel)
	kept = evs[:0]
	n := len(rejects)
	// Requests almost always carry one site: ask the site list once per run.
	var last, lastMsg, lastReason string
	for i := range evs {
		e := &evs[i]
		if g.sites != nil {
			if i == 0 || e.Site != last {
				last = e.Site
				if lastMsg, lastReason, err = g.sites.Admit(r.Context(), e.Site); err != nil {
					h.m.refuse("unavailable", len(evs))
					return nil, nil, false, httperr.Wrap(http.StatusServiceUnavailable,
						"site list unavailable, retry later", err).WithRetryAfter(h.cfg.RetryAfter)
				}
			}
			if lastMsg != "" {
				rejects = append(rejects, event.Reject{Index: idx[i], Error: lastMsg, Reason: lastReason})
				continue
			}
		}
		if msg, reason := g.refuse(e.Site, key, page); msg != "" {
			rejects = append(rejects, event.Reject{Index: idx[i], Error: msg, Reason: reason})
			continue
		}
		kept = append(kept, *e)
	}
	if len(rejects) == n {
		return kept, rejects, false, nil
	}
	h.m.rejectEvents(rejects[n:])
	slices.SortStableFunc(rejects, func(a, b event.Reject) int { return a.Index - b.Index })
	return kept, rejects, true, nil
}

// refuse says why an event of site may not be sent by this request, or "".
// page is the request's browser origin ("" when none). A keyed site takes
// events without its key only from its own pages: any client can send an
// Origin, so merely having one opens nothing.
func (g *gate) refuse(site string, key access.Key, page string) (msg, reason string) {
	required, ok := g.keys.Check(site, key)
	switch {
	case !required || ok:
		return "", ""
	case key.Present():
		return "key: wrong write key for site " + quote(site), reasonWriteKey
	case page == "":
		return "key: site " + quote(site) + " accepts events without an Origin only with its write key (X-Pulse-Key: KEY)", reasonWriteKey
	case !g.keys.PageAllowed(site, page):
		return "key: site " + quote(site) + " accepts events without its write key only from its origins (see --write-keys), not from " + quote(page), reasonWriteKey
	}
	return "", ""
}

// cors sets the CORS answer headers of r: "*" when every origin may send,
// else the request's Origin when it is allowed (and nothing when not, so
// the browser refuses to hand the answer to the page).
func (h *Handler) cors(c *gin.Context) bool {
	hd := c.Writer.Header()
	if h.gate.origins.Any() {
		hd["Access-Control-Allow-Origin"] = anyOrigin
		return true
	}
	hd.Add("Vary", "Origin")
	o := c.GetHeader("Origin")
	if o == "" || !h.gate.origins.Allowed(o, c.Request.Host) {
		return false
	}
	hd.Set("Access-Control-Allow-Origin", o)
	return true
}

// denied is the answer when no event was accepted and some were refused
// by the access rules.
func denied(rejects []event.Reject) error {
	return refuse(http.StatusForbidden,
		"no event accepted: refused by the site allowlist or a write key (see rejected)", rejects)
}

func quote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return strconv.Quote(s)
}
