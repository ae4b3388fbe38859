// Package promreg registers Prometheus collectors so that two components
// on one registry (two writers, two limiters) share a metric instead of
// failing.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg, or returns the collector of the same type
// already registered under the same name. A conflicting definition is a
// programming error and panics.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("register metrics: " + err.Error())
	}
	return c
}
