// Package enrich derives at ingest what the request of an event says about
// its visit (event.Visit): the source and campaign tags from the event's
// referrer and page URL (refsource), the browser and operating system from
// the User-Agent (uaparse), the country from the client address, and a
// visitor id for an event sent without one (package visitorid).
// Ingest keeps them in the event's record, so a replay reads what ingest
// derived instead of deriving it again with later lists and databases, and
// the address itself is never stored.
package enrich

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/refsource"
	"github.com/pulsehq/pulse/uaparse"
)

// Countries says in which country an address is (ISO 3166-1 alpha-2, ""
// when unknown): *geoip.DB.
type Countries interface {
	Country(addr netip.Addr) string
}

// VisitorIDs makes the visitor id of a request without one:
// *visitorid.IDs.
type VisitorIDs interface {
	ID(ctx context.Context, site string, client netip.Addr, userAgent string, at time.Time) (string, error)
}

// Enricher sets the visit fields of events. Safe for concurrent use.
type Enricher struct {
	sources   *refsource.List
	countries Countries
	ids       VisitorIDs
	// software is uaparse.Parser.Software, remembered: parsing a User-Agent is
	// most of what the visit fields of a 1-event request cost.
	software *uaparse.Memo[uaparse.Agent]
}

// New builds the referrer list and the User-Agent parser (about a quarter
// of a second: build one per process). countries nil leaves the country
// empty; ids nil leaves events without a uid without one.
func New(countries Countries, ids VisitorIDs) (*Enricher, error) {
	sources, err := refsource.New()
	if err != nil {
		return nil, fmt.Errorf("referrer list: %w", err)
	}
	return &Enricher{sources: sources, countries: countries, ids: ids,
		software: uaparse.NewMemo(uaparse.New().Software)}, nil
}

// EnrichAll sets the visit fields of evs, the events of one request (their
// URL, referrer and receive time already set by event.EnrichAll): the
// User-Agent and the address are read once for all of them. Direct
// traffic has no source. An event without a uid gets the visitor id of
// its site, address and User-Agent on its receive day; the error is that
// of a day's salt that could not be read, and then no event is changed
// for good (ingest answers 503 and the client sends again).
func (x *Enricher) EnrichAll(ctx context.Context, evs []event.Event, userAgent string, client netip.Addr) error {
	if err := x.visitorIDs(ctx, evs, userAgent, client); err != nil {
		return err
	}
	sw := x.software.Of(userAgent)
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
	return nil
}

// visitorIDs sets the uid of the events of evs that have none.
func (x *Enricher) visitorIDs(ctx context.Context, evs []event.Event, userAgent string, client netip.Addr) error {
	if x.ids == nil {
		return nil
	}
	var ids []string // made on the first event without a uid: Pulse's tracker always sends one
	for i := range evs {
		if evs[i].UID != "" {
			continue
		}
		id, err := x.ids.ID(ctx, evs[i].Site, client, userAgent, time.UnixMilli(evs[i].RT))
		if err != nil {
			return fmt.Errorf("visitor id: %w", err)
		}
		if ids == nil {
			ids = make([]string, len(evs))
		}
		ids[i] = id
	}
	for i, id := range ids {
		if id != "" {
			evs[i].UID = id
		}
	}
	return nil
}
