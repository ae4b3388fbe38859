package ratelimit_test

import (
	"github.com/pulsehq/pulse/ingest"
	"github.com/pulsehq/pulse/ratelimit"
)

var _ ingest.SiteLimiter = (*ratelimit.Limiter)(nil)
