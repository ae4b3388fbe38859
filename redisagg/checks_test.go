package redisagg_test

import (
	"github.com/pulsehq/pulse/aggregator"
	"github.com/pulsehq/pulse/query"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/replay"
)

// The interfaces its consumers declare. In a test file: aggregator's
// tests import redisagg, so redisagg itself may not import aggregator.
var (
	_ aggregator.Store = (*redisagg.Store)(nil)
	_ query.Store      = (*redisagg.Store)(nil)
	_ replay.Store     = (*redisagg.Store)(nil)
)
