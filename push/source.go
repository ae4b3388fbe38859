package push

import (
	"context"
	"errors"
)

// Source is where the hub reads the aggregates it pushes: snapshots, the
// delta log of each (site, metric), and live notices of new log entries.
// redisagg.Source reads them from Redis; MemorySource holds them in memory.
// push/sourcetest checks that an implementation keeps this contract.
type Source interface {
	// Snapshot reads q together with the n of the newest log entry of
	// (q.Site, q.Metric) it reflects: a subscriber that starts from it
	// applies exactly the entries after n. A query the source cannot
	// answer fails with an error that wraps ErrBadQuery.
	Snapshot(ctx context.Context, q SnapshotQuery) (n int64, series []Series, err error)
	// Listen opens a set of live subscriptions; the hub calls it once per
	// Run and closes it when Run ends.
	Listen(ctx context.Context) (Listener, error)
	// Range returns up to count entries of the log of (site, metric) with
	// n >= from, oldest first. An entry it cannot decode fails the call with
	// an error that wraps ErrBadDelta.
	Range(ctx context.Context, site, metric string, from, count int64) ([]Delta, error)
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

// Notice is one live message: a new entry of the log of (Site, Metric), or,
// with Joined set, the confirmation that (Site, Metric) is subscribed, sent
// again after every reconnect; entries published before it may have been
// missed. A Listener may also miss entries after it (a full buffer): the
// hub sees the jump in n, or the head of the log, and reads them by Range.
type Notice struct {
	Site, Metric string
	Joined       bool
	Delta        Delta
}

// SnapshotQuery asks for a metric's points over [From, To] (ms, aligned
// down to the step's buckets), one series for the total or, with GroupBy,
// one per value of that dimension: the Limit (0: 10) values with the
// largest totals over the range.
type SnapshotQuery struct {
	Site, Metric, Step string
	From, To           int64
	GroupBy            string
	Limit              int
}

// Series is one labelled series of a snapshot, with the shape of GET
// /v1/query's series: points are [bucket start ms, value], one per bucket
// of the range, 0 where nothing was counted.
type Series struct {
	Labels map[string]string `json:"labels"`
	Points [][2]int64        `json:"points"`
}

// MaxSnapshotBuckets is the most buckets a subscription's window may hold;
// every Source answers snapshots of that many.
const MaxSnapshotBuckets = 5000

var (
	// ErrBadQuery marks a snapshot query the source cannot answer as asked
	// (unknown metric, step or dimension); the client gets bad_query.
	ErrBadQuery = errors.New("push: bad query")
	// ErrBadDelta marks a log entry that cannot be decoded; a resume over
	// it gets a reset snapshot.
	ErrBadDelta = errors.New("push: undecodable delta")
)
