package ratelimit

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/internal/promreg"
)

type metrics struct {
	limitedIP, limitedSite, limitedSiteClient, limitedConn prometheus.Counter
	pairEntries                                            prometheus.Collector
	ipEntries, siteEntries, conns                          prometheus.Collector
}

func newMetrics(reg prometheus.Registerer, l *Limiter) metrics {
	limited := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pulse_ratelimit_limited_total",
		Help: "Requests, event batches (site, site_client) and connections refused by a rate limit, by scope.",
	}, []string{"scope"})
	ipEntries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pulse_ratelimit_ip_entries",
		Help: "Per-IP token buckets held (bounded by the configured maximum).",
	}, func() float64 {
		if l.ips == nil {
			return 0
		}
		return float64(l.ips.len())
	})
	siteEntries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pulse_ratelimit_site_entries",
		Help: "Per-site token buckets held (bounded by the configured maximum).",
	}, func() float64 {
		if l.sites == nil {
			return 0
		}
		return float64(l.sites.len())
	})
	pairEntries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pulse_ratelimit_site_client_entries",
		Help: "Token buckets per site and client held (bounded by the configured maximum).",
	}, func() float64 {
		if l.pairs == nil {
			return 0
		}
		return float64(l.pairs.len())
	})
	conns := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pulse_ratelimit_conns",
		Help: "Connection slots held through AcquireConn.",
	}, func() float64 {
		l.conns.mu.Lock()
		defer l.conns.mu.Unlock()
		return float64(l.conns.sum)
	})
	if reg != nil {
		limited = promreg.Register(reg, limited)
		// Gauge funcs read this Limiter; a second Limiter on the same
		// registry keeps reporting the first one's tables.
		ipEntries = promreg.Register(reg, ipEntries)
		siteEntries = promreg.Register(reg, siteEntries)
		pairEntries = promreg.Register(reg, pairEntries)
		conns = promreg.Register(reg, conns)
	}
	return metrics{
		limitedIP:   limited.WithLabelValues("ip"),
		limitedSite: limited.WithLabelValues("site"),
		// A client over its share of a site, the site itself not full.
		limitedSiteClient: limited.WithLabelValues("site_client"),
		limitedConn:       limited.WithLabelValues("conn"),
		ipEntries:         ipEntries,
		siteEntries:       siteEntries,
		pairEntries:       pairEntries,
		conns:             conns,
	}
}
