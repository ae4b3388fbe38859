package kinesis_test

import (
	"github.com/pulsehq/pulse/aggregator"
	"github.com/pulsehq/pulse/archiver"
	"github.com/pulsehq/pulse/replay"
	"github.com/pulsehq/pulse/stream"
	"github.com/pulsehq/pulse/stream/kinesis"
)

// The interfaces the readers of a stream declare.
var (
	_ stream.Lister     = (*kinesis.Stream)(nil)
	_ aggregator.Source = (*kinesis.Stream)(nil)
	_ archiver.Source   = (*kinesis.Stream)(nil)
	_ replay.Stream     = (*kinesis.Stream)(nil)
)
