// Package statsquery answers Stats API queries (package stats) from the
// fact rows the apply script keeps per site and hour (package factrow;
// docs/queries.md, design B): it reads the hours of a query's range,
// keeps decoded hours in a cache bounded in bytes, and runs stats.Execute
// over them.
//
// Row strings only grow (the apply script APPENDs), so a cached hour stays
// valid as a prefix: a query asks every hour's length in one pipeline and
// reads only the bytes past what the cache holds. That is also how a live
// query (package livequery) follows new rows (HourRows).
package statsquery

import (
	"container/list"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/pulsehq/pulse/factrow"
	"github.com/pulsehq/pulse/stats"
)

// RowStore is where the rows are: *redisagg.Store.
type RowStore interface {
	// RowLengths returns the byte length of the row string of each hour
	// of site (0 when it has none).
	RowLengths(ctx context.Context, site string, hours []int64) ([]int64, error)
	// RowBytes returns bytes [from, to) of the row string of site's hour.
	RowBytes(ctx context.Context, site string, hour, from, to int64) ([]byte, error)
}

// Config configures an Engine. Zero values mean the documented defaults.
type Config struct {
	// Retention is how long rows are kept after their hour ends
	// (metric.Catalog.RowRetention); a range reaching before it is a 400.
	// Default 35 days.
	Retention time.Duration
	// CacheBytes bounds the decoded hours kept between queries (about 150
	// bytes a row); default 256 MiB. Negative: no cache.
	CacheBytes int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Engine answers queries. Safe for concurrent use.
type Engine struct {
	store RowStore
	cfg   Config

	mu    sync.Mutex
	hours map[hourKey]*list.Element // of *cachedHour
	lru   list.List                 // front: most recently used
	bytes int64
}

type hourKey struct {
	site string
	hour int64
}

// cachedHour is the decoded prefix of one hour's row string. rows only
// grows while mu is held; a reader copies the slice header under mu and
// reads it after, which appends never disturb.
type cachedHour struct {
	key   hourKey
	mu    sync.Mutex
	len   int64 // bytes of the string decoded into rows
	rows  []stats.Row
	bytes int64 // what rows costs, as counted against CacheBytes
	dec   *factrow.Decoder
}

// rowCost is what one decoded row is counted as in the cache: the Row
// struct and its share of interned texts and props.
const rowCost = 160

// New returns an Engine over store.
func New(store RowStore, cfg Config) *Engine {
	if cfg.Retention <= 0 {
		cfg.Retention = 35 * 24 * time.Hour
	}
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = 256 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Engine{store: store, cfg: cfg, hours: map[hourKey]*list.Element{}}
}

// Oldest is the start of the oldest hour whose rows may still be kept at
// now: a range starting before it cannot be answered exactly.
func (e *Engine) Oldest(now time.Time) time.Time {
	return time.UnixMilli(factrow.HourOf(now.Add(-e.cfg.Retention).UnixMilli()) + factrow.HourMs)
}

// Prepare checks q against what the rows hold at now and resolves an "all"
// range to begin at the oldest rows kept. A range reaching before the
// retention is an *stats.Error naming date_range.
func (e *Engine) Prepare(q stats.Query, now time.Time) (stats.Query, error) {
	if err := q.EventLevelOnly(); err != nil {
		return q, err
	}
	oldest := e.Oldest(now)
	if q.Range.AllTime {
		return q.WithStart(oldest)
	}
	if q.Range.From.Before(oldest) {
		return q, &stats.Error{Part: "date_range", Msg: fmt.Sprintf(
			"starts %s, before the oldest rows kept (%s, retention %s); longer ranges are answered from the archive by an SQL engine (docs/queries.md)",
			q.Range.From.In(q.Location).Format(time.RFC3339), oldest.In(q.Location).Format(time.RFC3339), days(e.cfg.Retention))}
	}
	return q, nil
}

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// Hours returns the starts of the hours holding rows of [from, to) that
// exist at now: rows are never later than their receive time.
func Hours(from, to, now time.Time) []int64 {
	end := min(to.UnixMilli(), now.UnixMilli()+1)
	var out []int64
	for h := factrow.HourOf(from.UnixMilli()); h < end; h += factrow.HourMs {
		out = append(out, h)
	}
	return out
}

// Answer answers q (from stats.Parse at the same clock).
func (e *Engine) Answer(ctx context.Context, q stats.Query) (stats.Answer, error) {
	now := e.cfg.Now()
	q, err := e.Prepare(q, now)
	if err != nil {
		return stats.Answer{}, err
	}
	rows, err := e.Rows(ctx, q.Site, Hours(q.Range.From, q.Range.To, now))
	if err != nil {
		return stats.Answer{}, err
	}
	return stats.Execute(q, func(yield func(*stats.Row) bool) {
		for _, hr := range rows {
			for i := range hr {
				if !yield(&hr[i]) {
					return
				}
			}
		}
	})
}

// Rows returns the rows of site's hours as they are now, one slice per
// hour that has any. The slices are shared: read them, never write.
func (e *Engine) Rows(ctx context.Context, site string, hours []int64) ([][]stats.Row, error) {
	all, err := e.HourRows(ctx, site, hours)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, rows := range all {
		if len(rows) > 0 {
			out = append(out, rows)
		}
	}
	return out, nil
}

// HourRows returns the rows of each of site's hours as they are now, in
// the order of hours (nil for an hour without rows): a live query keeps
// per hour how many it has counted. Between two calls an hour's slice
// only grows, unless its string expired and began again. The slices are
// shared: read them, never write.
func (e *Engine) HourRows(ctx context.Context, site string, hours []int64) ([][]stats.Row, error) {
	if len(hours) == 0 {
		return nil, nil
	}
	lens, err := e.store.RowLengths(ctx, site, hours)
	if err != nil {
		return nil, fmt.Errorf("read row lengths of %s: %w", site, err)
	}
	out := make([][]stats.Row, len(hours))
	for i, h := range hours {
		if lens[i] == 0 {
			continue
		}
		rows, err := e.hour(ctx, hourKey{site, h}, lens[i])
		if err != nil {
			return nil, err
		}
		out[i] = rows
	}
	return out, nil
}

// hour returns the rows of one hour whose string is n bytes long, reading
// only the bytes the cache lacks.
func (e *Engine) hour(ctx context.Context, k hourKey, n int64) ([]stats.Row, error) {
	c := e.entry(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n < c.len {
		// Shorter than what was decoded: the string expired and began
		// again (or a namespace was rebuilt); start over.
		c.len, c.rows, c.dec = 0, nil, factrow.NewDecoder()
	}
	if n > c.len {
		b, err := e.store.RowBytes(ctx, k.site, k.hour, c.len, n)
		if err != nil {
			return nil, fmt.Errorf("read rows of %s hour %d: %w", k.site, k.hour, err)
		}
		before := len(c.rows)
		c.rows, err = c.dec.Decode(c.rows, b, k.hour)
		if err != nil {
			return nil, fmt.Errorf("rows of %s hour %d: %w", k.site, k.hour, err)
		}
		// What was read, not n: a string that expired between the
		// length and the read comes back shorter, and is read anew next.
		c.len += int64(len(b))
		e.charge(c, int64(len(c.rows)-before)*rowCost)
	}
	return c.rows, nil
}

// entry returns the cache entry of k, made if absent, as most recently used.
func (e *Engine) entry(k hourKey) *cachedHour {
	e.mu.Lock()
	defer e.mu.Unlock()
	if el, ok := e.hours[k]; ok {
		e.lru.MoveToFront(el)
		return el.Value.(*cachedHour)
	}
	c := &cachedHour{key: k, dec: factrow.NewDecoder()}
	e.hours[k] = e.lru.PushFront(c)
	return c
}

// charge counts add bytes for c and drops the least recently used hours
// while the cache is over its bound. A dropped hour still in use by a
// query stays valid for it; the next query reads it again.
func (e *Engine) charge(c *cachedHour, add int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c.bytes += add
	if el, ok := e.hours[c.key]; ok && el.Value == c {
		e.bytes += add
	}
	for e.bytes > max(e.cfg.CacheBytes, 0) && e.lru.Len() > 0 {
		el := e.lru.Back()
		old := el.Value.(*cachedHour)
		e.lru.Remove(el)
		delete(e.hours, old.key)
		e.bytes -= old.bytes
	}
}

// CachedBytes is what the cache holds now, as counted against CacheBytes.
func (e *Engine) CachedBytes() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bytes
}
