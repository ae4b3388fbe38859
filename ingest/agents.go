package ingest

import (
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/pulsehq/pulse/event"
)

// Bounds of the User-Agent cache: a site's traffic comes from a few
// hundred distinct User-Agents, and one longer than maxCachedAgent is rare
// enough (or made up) to be classified each time rather than kept.
const (
	agentCacheSize = 4096
	maxCachedAgent = 512
)

// agentClasses remembers the device class and bot flag of the User-Agents
// ingest sees: classifying one (event.Classify) is a few dozen substring
// searches, a tenth of what a 1-event request cost, and almost every
// request repeats a User-Agent seen before. Safe for concurrent use.
type agentClasses struct {
	cache *lru.Cache[string, agentClass]
}

type agentClass struct {
	device string
	bot    bool
}

func newAgentClasses() agentClasses {
	c, err := lru.New[string, agentClass](agentCacheSize)
	if err != nil { // only for a size below 1
		panic(err)
	}
	return agentClasses{cache: c}
}

// classify is event.Classify of ua, remembered.
func (a agentClasses) classify(ua string) (device string, bot bool) {
	if len(ua) > maxCachedAgent {
		return event.Classify(ua)
	}
	if c, ok := a.cache.Get(ua); ok {
		return c.device, c.bot
	}
	device, bot = event.Classify(ua)
	a.cache.Add(ua, agentClass{device: device, bot: bot})
	return device, bot
}
