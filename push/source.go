package push

import (
	"context"

	"github.com/pulsehq/pulse/redisagg"
)

// Snapshotter reads a series together with the delta-log counter n it
// reflects; *redisagg.Store implements it.
type Snapshotter interface {
	Snapshot(ctx context.Context, q redisagg.SeriesQuery) (int64, redisagg.Result, error)
}

// DeltaSource reads the per-(site, metric) delta log: live entries through a
// Listener, history by range. RedisSource implements it over go-redis.
type DeltaSource interface {
	// Listen opens a set of live subscriptions; the hub calls it once per Run
	// and closes it when Run ends.
	Listen(ctx context.Context) (Listener, error)
	// Range returns up to count entries of the log of (site, metric) with
	// n >= from, oldest first.
	Range(ctx context.Context, site, metric string, from, count int64) ([]LogEntry, error)
	// Last returns the n of the newest entry in the log, 0 when it is empty.
	Last(ctx context.Context, site, metric string) (int64, error)
}

// Listener delivers the live entries of the keys it is subscribed to.
type Listener interface {
	Subscribe(ctx context.Context, site, metric string) error
	Unsubscribe(ctx context.Context, site, metric string) error
	// Notices is closed after Close.
	Notices() <-chan Notice
	Close() error
}

// Notice is one live message: an entry's JSON, or, with Joined set, the
// confirmation that (site, metric) is subscribed, sent again after every
// reconnect; entries published before it may have been missed.
type Notice struct {
	Site, Metric string
	Joined       bool
	Data         []byte
}

// LogEntry is one entry of a delta log: n and its JSON.
type LogEntry struct {
	N    int64
	Data []byte
}
