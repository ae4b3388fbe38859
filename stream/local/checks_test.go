package local_test

import (
	"github.com/pulsehq/pulse/aggregator"
	"github.com/pulsehq/pulse/archiver"
	"github.com/pulsehq/pulse/replay"
	"github.com/pulsehq/pulse/stream"
	"github.com/pulsehq/pulse/stream/local"
)

// The interfaces the readers of a stream declare.
var (
	_ stream.Lister     = (*local.Log)(nil)
	_ aggregator.Source = (*local.Log)(nil)
	_ archiver.Source   = (*local.Log)(nil)
	_ replay.Stream     = (*local.Log)(nil)
)
