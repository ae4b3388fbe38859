package lease_test

import (
	"github.com/pulsehq/pulse/aggregator"
	"github.com/pulsehq/pulse/lease"
)

var _ aggregator.Leases = (*lease.Manager)(nil)
