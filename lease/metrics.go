package lease

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/internal/promreg"
)

// Reasons a lease is lost (dropped without a release).
const (
	lostTaken   = "taken"   // renew found another owner or fence
	lostExpired = "expired" // not confirmed by a renew within TTL
)

type metrics struct {
	owned    prometheus.Gauge
	members  prometheus.Gauge
	acquired prometheus.Counter
	released prometheus.Counter
	lost     *prometheus.CounterVec
	errors   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_lease_owned", Help: "Shard leases this instance holds and reports in Leases.",
		}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_lease_members", Help: "Live instances sharing the shards, as of the last heartbeat.",
		}),
		acquired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_lease_acquired_total", Help: "Shard leases taken, each with a new fence.",
		}),
		released: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_lease_released_total", Help: "Shard leases given up to rebalance or on reshard.",
		}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_lease_lost_total", Help: "Shard leases lost without a release: taken by another owner or not renewed in time.",
		}, []string{"reason"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_lease_errors_total", Help: "Failed lease operations, by op (renew, heartbeat, shards, acquire, release).",
		}, []string{"op"}),
	}
	for _, r := range []string{lostTaken, lostExpired} {
		m.lost.WithLabelValues(r)
	}
	for _, op := range []string{"renew", "heartbeat", "shards", "acquire", "release"} {
		m.errors.WithLabelValues(op)
	}
	if reg == nil {
		return m, nil
	}
	// A manager made anew on the same registry (the live aggregator's,
	// on every namespace switch) shares the previous one's collectors:
	// the project's one policy (internal/promreg).
	m.owned = promreg.Register(reg, m.owned)
	m.members = promreg.Register(reg, m.members)
	m.acquired = promreg.Register(reg, m.acquired)
	m.released = promreg.Register(reg, m.released)
	m.lost = promreg.Register(reg, m.lost)
	m.errors = promreg.Register(reg, m.errors)
	return m, nil
}
