// Package enrich derives at ingest what the request of an event says about
// its visit (event.Visit): the source and campaign tags from the event's
// referrer and page URL (refsource), the browser and operating system from
// the User-Agent (uaparse), and the country from the client address.
// Ingest keeps them in the event's record, so a replay reads what ingest
// derived instead of deriving it again with later lists and databases, and
// the address itself is never stored.
package enrich

import (
	"fmt"
	"net/netip"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/refsource"
	"github.com/pulsehq/pulse/uaparse"
)

// Countries says in which country an address is (ISO 3166-1 alpha-2, ""
// when unknown): *geoip.DB.
type Countries interface {
	Country(addr netip.Addr) string
}

// Enricher sets the visit fields of events. Safe for concurrent use.
type Enricher struct {
	sources   *refsource.List
	agents    *uaparse.Parser
	countries Countries
}

// New builds the referrer list and the User-Agent parser (about a quarter
// of a second: build one per process). countries nil leaves the country
// empty.
func New(countries Countries) (*Enricher, error) {
	sources, err := refsource.New()
	if err != nil {
		return nil, fmt.Errorf("referrer list: %w", err)
	}
	return &Enricher{sources: sources, agents: uaparse.New(), countries: countries}, nil
}

// EnrichAll sets the visit fields of evs, the events of one request (their
// URL and referrer already read by event.EnrichAll): the User-Agent and the
// address are read once for all of them. Direct traffic has no source.
func (x *Enricher) EnrichAll(evs []event.Event, userAgent string, client netip.Addr) {
	sw := x.agents.Software(userAgent)
	country := ""
	if x.countries != nil && client.IsValid() {
		country = x.countries.Country(client)
	}
	for i := range evs {
		e := &evs[i]
		source := x.sources.Source(e.Ref, e.URL)
		if source == refsource.Direct {
			source = ""
		}
		utm := refsource.ParseUTM(e.URL)
		e.Visit = event.Visit{
			Source: source, UTMSource: utm.Source, UTMMedium: utm.Medium, UTMCampaign: utm.Campaign,
			UTMContent: utm.Content, UTMTerm: utm.Term,
			Browser: sw.Browser, BrowserVersion: sw.BrowserVersion, OS: sw.OS, OSVersion: sw.OSVersion,
			Country: country,
		}
	}
}
