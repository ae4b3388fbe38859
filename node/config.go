package node

import (
	"github.com/pulsehq/pulse/stats"
	"net/netip"
	"time"
)

// Config is everything one `pulse serve` process reads from its flags and
// environment, already validated (cmd/pulse checks the values and names
// the flag of a bad one).
type Config struct {
	Addr            string
	Data            string
	Roles           map[string]bool // some of AllRoles
	Stream          string
	KinesisEFO      string // enhanced fan-out consumer name of the main Kinesis reader
	Redis           string
	Archive         string
	Shards          int
	ReadToken       string
	AdminToken      string
	PublicURL       string
	AllowedOrigins  []string
	Namespace       string
	DedupWindow     time.Duration
	AllowedLateness time.Duration
	RetentionAge    time.Duration
	RetentionBytes  int64
	LogFormat       string
	LogLevel        string
	MetricsConfig   string
	RateIP          float64
	RateSite        float64
	// SiteClientShare is the share of RateSite one client may take
	// (ratelimit.Config.ClientShare); 0 means the default.
	SiteClientShare float64
	TrustedProxies  []netip.Prefix
	AdminAddr       string
	MaxInFlight     int64
	// AdmitWait is how long an ingest request waits for room under
	// MaxInFlight before its 503 (0: ingest.DefaultAdmitWait).
	AdmitWait     time.Duration
	Harden        Harden
	Group         Group
	ArchiveMaxAge time.Duration
	DrainDelay    time.Duration // between /readyz failing and the listener closing, at a stop
	SiteIdleTTL   time.Duration // redisagg.Config.IdleTTL; 0: its default
	// StatsCacheBytes bounds each query node's cache of decoded Stats API
	// rows (statsquery.Config.CacheBytes); 0: no cache.
	StatsCacheBytes int64
	// GeoIP is the MaxMind DB file ingest reads the country of a client
	// address from (geoip.Open); empty: the bundled database.
	GeoIP string
	// SiteZones are the sites' time zones (--site-timezones).
	SiteZones stats.SiteZones
}

// Harden is the access and abuse settings of `pulse serve`.
type Harden struct {
	ReadTokensFile string // TOKEN=SITES lines
	WriteKeysFile  string // SITE=KEY ORIGINS lines
	// Sites are the sites accepted at ingest (--sites); "*" among them
	// accepts any site, within SitesMax and SitesNewPerMinute. Empty is
	// "*" (cmd/pulse never leaves it empty: its default is demo).
	Sites             []string
	SitesMax          int      // 0: sites.DefaultMax
	SitesNewPerMinute float64  // 0: sites.DefaultNewPerMinute
	IngestOrigins     []string // empty: every origin
	MaxConnsPerIP     int      // 0: default; < 0: no cap
}

// Group is how the aggregate role shares the shards with other instances,
// and the archive role takes turns with its standbys (docs/scaling.md).
type Group struct {
	Mode     string // on or off (cmd/pulse resolves auto)
	LeaseTTL time.Duration
	Owner    string
}

// AllRoles lists the roles a node can run, in the order they are named.
func AllRoles() []string {
	return []string{"ingest", "aggregate", "push", "archive"}
}

// RoleNames lists the roles cfg runs, in the order of AllRoles.
func (cfg Config) RoleNames() []string {
	var out []string
	for _, r := range AllRoles() {
		if cfg.Roles[r] {
			out = append(out, r)
		}
	}
	return out
}
