// Package event defines the analytics event, how collect bodies decode into
// events, how they are validated and enriched with server-side fields, and how
// they are encoded into stream records.
package event

// Event is one analytics event as it travels through Pulse: the fields a
// client sends plus the fields the server derives at ingest. It is encoded as
// JSON in stream records and in the archive, so other tools can read it.
type Event struct {
	// Client fields (docs/api.md, "Event").
	ID    string         `json:"id"`
	Site  string         `json:"site"`
	Type  string         `json:"type"`
	TS    int64          `json:"ts"` // event time, ms since epoch; receive time when the client sent none
	URL   string         `json:"url,omitempty"`
	Ref   string         `json:"ref,omitempty"`
	UID   string         `json:"uid,omitempty"`
	Props map[string]any `json:"props,omitempty"` // values are string, float64 or bool
	// Hash says the page routes by its URL fragment, so Path keeps it
	// (Plausible's hashMode). Enrich folds it into Path and clears it:
	// records do not carry it.
	Hash bool `json:"-"`

	// Server fields, set by ingest.
	RT      int64  `json:"rt"`                 // receive time, ms since epoch
	Path    string `json:"path,omitempty"`     // path of URL
	RefHost string `json:"ref_host,omitempty"` // host of Ref
	Device  string `json:"device,omitempty"`   // desktop, mobile, tablet, bot, unknown
	Bot     bool   `json:"bot,omitempty"`

	// Visit fields, set by ingest from the request (package enrich) and
	// kept in the record, so that a replay reads what ingest derived
	// rather than deriving it again with other lists or databases. They
	// are the event's own: a visit's source is its first event's, since
	// later pages of a visit are self-referrals with none.
	Visit
}

// Visit is what ingest derives about the visitor of an event besides its
// device: where it came from, its browser and system, and its country.
// The client address it is derived from is never stored.
type Visit struct {
	Source         string `json:"source,omitempty"` // "Google", "Hacker News", or the referrer's host; "" when direct
	UTMSource      string `json:"utm_source,omitempty"`
	UTMMedium      string `json:"utm_medium,omitempty"`
	UTMCampaign    string `json:"utm_campaign,omitempty"`
	UTMContent     string `json:"utm_content,omitempty"`
	UTMTerm        string `json:"utm_term,omitempty"`
	Browser        string `json:"browser,omitempty"`
	BrowserVersion string `json:"browser_version,omitempty"`
	OS             string `json:"os,omitempty"`
	OSVersion      string `json:"os_version,omitempty"`
	Country        string `json:"country,omitempty"` // ISO 3166-1 alpha-2
}

// PartitionKey is the stream partition key of the event. It is derived only
// from fields a client retry keeps (site and id), so every duplicate of an
// event lands on the same shard and deduplication stays local to one owner.
func (e *Event) PartitionKey() string {
	return e.Site + "/" + e.ID
}

// AppendPartitionKey appends the PartitionKey of e to b.
func (e *Event) AppendPartitionKey(b []byte) []byte {
	b = append(b, e.Site...)
	b = append(b, '/')
	return append(b, e.ID...)
}
