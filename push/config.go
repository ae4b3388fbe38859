package push

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/metric"

	"github.com/pulsehq/pulse/stats"
)

// TokenChecker says whether a token may read.
type TokenChecker interface{ Read(token string) bool }

// Config configures a Hub. Zero values mean the documented defaults.
type Config struct {
	// Admit, when set, is asked before the upgrade whether the request may
	// open one more connection (a per-address cap); a refusal is answered
	// 429 with Retry-After, and the release it returns runs when the
	// connection ends.
	Admit func(r *http.Request) (release func(), ok bool)
	// ClientAddr names the client address of a request for
	// MaxUnauthPerAddr; nil means the host of the peer (r.RemoteAddr).
	ClientAddr func(r *http.Request) string
	// MaxUnauthPerAddr caps, per client address, the connections that
	// upgraded without a token and have not sent their auth message yet
	// (4); MaxUnauth caps them in all (256). Past either, the upgrade is
	// refused with 429 and Retry-After. They hold a slot of Admit too;
	// the auth message frees the unauthenticated one. < 0: no cap.
	MaxUnauthPerAddr int
	MaxUnauth        int
	// AuthTimeout is how long a connection without a token may take to
	// send its auth message before it is closed with 1008 (2s).
	AuthTimeout time.Duration
	// FlushEvery is how often merged deltas go out to subscribers (50ms).
	FlushEvery time.Duration
	// MaxSubsPerConn caps subscriptions per connection (32).
	MaxSubsPerConn int
	// SendQueue caps the pending points of a connection before merging (4096).
	SendQueue int
	// StallClose is how long a connection may stay stalled (queue full and
	// unread) before it is closed with 4008 (30s).
	StallClose time.Duration
	// PingEvery is the ping interval (15s).
	PingEvery time.Duration
	// IdleTimeout closes a connection that does not answer a ping (60s), 4000.
	IdleTimeout time.Duration
	// MaxMessageBytes caps a client message (4096); larger closes with 1009.
	MaxMessageBytes int64
	// MaxAuthedMessageBytes caps a client message once the connection is
	// authenticated (73,728: a live query's body may be 64 KiB, as
	// several filters of long value lists need); larger closes with 1009.
	// An anonymous client stays at MaxMessageBytes.
	MaxAuthedMessageBytes int64
	// MessageRate is the sustained rate of client messages allowed per
	// connection (20/s), MessageBurst the bucket (100, enough to swap every
	// subscription of a dashboard at once). A client over it is closed with
	// 1008 "too many messages". MessageRate < 0 turns the limit off.
	MessageRate  float64
	MessageBurst int
	// AllowedOrigins are path.Match patterns for the Origin host (or
	// scheme://host when the pattern has "://"). Empty: same host only.
	// "*": any origin. Requests without Origin (not browsers) are allowed.
	AllowedOrigins []string
	// SiteZones answer a live query that names no timezone in its site's
	// zone, as POST /v1/stats does.
	SiteZones stats.SiteZones
	// Tokens checks read tokens; nil means no token is needed. When it
	// is a SiteTokenChecker, a subscribe to a site the token does not
	// grant gets the error "forbidden".
	Tokens TokenChecker
	// Catalog validates subscriptions; nil means the built-in metrics and steps.
	Catalog *metric.Catalog
	// CheckEvery is how often the hub compares each live key with the head of
	// its delta log, so a pub/sub message lost in a quiet period is still
	// caught up (5s).
	CheckEvery time.Duration
	// Now tells the time of the stall and message-rate clocks and of
	// snapshot windows; nil means time.Now.
	Now func() time.Time
	// Live answers subscriptions of the live query form ("query": a Stats
	// API body); nil refuses them with unavailable.
	Live LiveQueries
	// Logger: nil means no logging.
	Logger *slog.Logger
	// Registerer: nil means no metrics are registered.
	Registerer prometheus.Registerer
}

// Defaults of the limits on connections not authenticated yet.
const (
	DefaultMaxUnauthPerAddr = 4
	DefaultMaxUnauth        = 256
	DefaultAuthTimeout      = 2 * time.Second
)

const (
	// maxEarly bounds the entries buffered for a subscription between
	// attaching and its snapshot; past it the subscribe is retried.
	maxEarly = 4096
	// maxReplay bounds the log entries a resume replays; past it: reset.
	maxReplay = 10000
	// maxCatchUp bounds the entries read to close a gap in the pub/sub stream.
	maxCatchUp = 10000
	// maxQueuedBytes bounds snapshots and errors queued on one connection; the
	// reader stops reading client messages until the writer drains.
	maxQueuedBytes = 4 << 20
	// maxScratch is the largest frame buffer a writer returns to the pool, and
	// about the most one write carries.
	maxScratch = 64 << 10
	// redisTimeout bounds one store or log call.
	redisTimeout = 5 * time.Second
)

func (c Config) withDefaults() Config {
	if c.FlushEvery <= 0 {
		c.FlushEvery = 50 * time.Millisecond
	}
	if c.MaxSubsPerConn <= 0 {
		c.MaxSubsPerConn = 32
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 4096
	}
	if c.StallClose <= 0 {
		c.StallClose = 30 * time.Second
	}
	if c.PingEvery <= 0 {
		c.PingEvery = 15 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 4096
	}
	if c.MaxAuthedMessageBytes <= 0 {
		c.MaxAuthedMessageBytes = maxQueryBytes + 8<<10
	}
	if c.MessageRate == 0 {
		c.MessageRate = DefaultMessageRate
	}
	if c.MessageBurst <= 0 {
		c.MessageBurst = DefaultMessageBurst
	}
	if c.ClientAddr == nil {
		c.ClientAddr = peerAddr
	}
	if c.MaxUnauthPerAddr == 0 {
		c.MaxUnauthPerAddr = DefaultMaxUnauthPerAddr
	}
	if c.MaxUnauth == 0 {
		c.MaxUnauth = DefaultMaxUnauth
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = DefaultAuthTimeout
	}
	if c.CheckEvery <= 0 {
		c.CheckEvery = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Catalog == nil {
		cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
		if err != nil {
			panic("push: built-in catalog invalid: " + err.Error())
		}
		c.Catalog = cat
	}
	return c
}
