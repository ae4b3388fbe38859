package ingest

import (
	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/uaparse"
)

// agentClass is the device class and bot flag of a User-Agent
// (event.Classify), remembered per User-Agent by the handler.
type agentClass struct {
	device string
	bot    bool
}

func newAgentClasses() *uaparse.Memo[agentClass] {
	return uaparse.NewMemo(func(ua string) agentClass {
		device, bot := event.Classify(ua)
		return agentClass{device: device, bot: bot}
	})
}
