// Package statsquery answers Stats API queries (package stats) from the
// fact rows the apply script keeps per site and hour (package factrow;
// docs/queries.md, design B): it reads the hours of a query's range,
// keeps them in columns (stats.Segment) in a cache bounded in bytes, and
// runs stats.ExecuteSegments over them.
//
// Row strings only grow (the apply script APPENDs), so a cached hour stays
// valid as a prefix: a query asks every hour's length in one pipeline and
// reads only the bytes past what the cache holds. That is also how a live
// query (package livequery) follows new rows (HourSegments).
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
	// CacheBytes bounds the decoded hours kept between queries (in
	// columns, about 15 bytes a row on the reference site, and 48 bytes a
	// visitor); default 256 MiB. Negative: no cache.
	CacheBytes int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Counts, when set, tells whether a range reaching before the rows
	// kept had events there: a range that had none (a site younger than
	// the retention, asked for 12 months) is answered from the rows.
	Counts EventCounter
}

// EventCounter counts a site's events in [from, to) from aggregates kept
// longer than the rows: *redisagg.Store.
type EventCounter interface {
	EventsIn(ctx context.Context, site string, from, to time.Time) (int64, error)
}

// Engine answers queries. Safe for concurrent use.
type Engine struct {
	store RowStore
	cfg   Config

	mu    sync.Mutex
	hours map[hourKey]*list.Element // of *cachedHour
	lru   list.List                 // front: most recently used
	bytes int64
	sites map[string]*siteNumbers

	// quiet is, by site, the earliest instant Counts showed no event from
	// up to the oldest rows kept, while those rows begin at the same hour:
	// a live query resolves its range again at every refresh, and should
	// not read a year of counts each time.
	quietMu sync.Mutex
	quiet   map[string]quietSpan
}

// quietSpan is a span [from, oldest] of a site without events.
type quietSpan struct{ from, oldest time.Time }

type hourKey struct {
	site string
	hour int64
}

// siteNumbers is the visitor numbering of a site's cached hours
// (stats.VisitorNumbers), with what it is charged and how many rows the
// hours numbered with it hold: numbers of hours dropped from the cache
// stay, so when they outnumber the rows kept the site starts over.
type siteNumbers struct {
	numbers *stats.VisitorNumbers
	charged int   // numbers counted against CacheBytes
	rows    int64 // rows of the site's cached hours
}

// cachedHour is the decoded prefix of one hour's row string, in columns.
// seg only grows while mu is held; a reader takes a View under mu and
// reads it after, which appends never disturb.
type cachedHour struct {
	key   hourKey
	mu    sync.Mutex
	len   int64 // bytes of the string decoded into seg
	seg   *stats.Segment
	nums  *siteNumbers
	bytes int64 // what seg costs, as counted against CacheBytes
	rows  int64 // seg's rows, as counted in nums.rows
}

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
	return &Engine{store: store, cfg: cfg, hours: map[hourKey]*list.Element{}, sites: map[string]*siteNumbers{},
		quiet: map[string]quietSpan{}}
}

// Oldest is the start of the oldest hour whose rows may still be kept at
// now: a range starting before it cannot be answered exactly.
func (e *Engine) Oldest(now time.Time) time.Time {
	return time.UnixMilli(factrow.HourOf(now.Add(-e.cfg.Retention).UnixMilli()) + factrow.HourMs)
}

// Prepare checks q against what the rows hold at now and resolves an "all"
// range to begin at the oldest rows kept. A range reaching before the
// retention is an *stats.Error naming date_range, unless Config.Counts
// says the site had no event before the rows kept (counted by whole
// buckets up to and with the oldest row's, so a site whose first events
// are in that bucket is refused too, never answered in part).
func (e *Engine) Prepare(ctx context.Context, q stats.Query, now time.Time) (stats.Query, error) {
	oldest := e.Oldest(now)
	if q.Range.AllTime {
		return q.WithStart(oldest)
	}
	if q.Range.From.Before(oldest) && !e.noneBefore(ctx, q.Site, q.Range.From, oldest) {
		return q, &stats.Error{Part: "date_range", Msg: fmt.Sprintf(
			"starts %s, before the oldest rows kept (%s, retention %s); longer ranges are answered from the archive by an SQL engine (docs/queries.md)",
			q.Range.From.In(q.Location).Format(time.RFC3339), oldest.In(q.Location).Format(time.RFC3339), days(e.cfg.Retention))}
	}
	return q, nil
}

// noneBefore reports whether Counts knows that site had no event from
// from to oldest, in whole buckets of its counts (oldest's included).
func (e *Engine) noneBefore(ctx context.Context, site string, from, oldest time.Time) bool {
	if e.cfg.Counts == nil {
		return false
	}
	e.quietMu.Lock()
	q, ok := e.quiet[site]
	e.quietMu.Unlock()
	if ok && q.oldest.Equal(oldest) && !from.Before(q.from) {
		return true
	}
	n, err := e.cfg.Counts.EventsIn(ctx, site, from, oldest.Add(time.Millisecond))
	if err != nil || n != 0 {
		return false
	}
	e.quietMu.Lock()
	defer e.quietMu.Unlock()
	if q, ok := e.quiet[site]; !ok || !q.oldest.Equal(oldest) || from.Before(q.from) {
		e.quiet[site] = quietSpan{from: from, oldest: oldest}
	}
	return true
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
	q, err := e.Prepare(ctx, q, now)
	if err != nil {
		return stats.Answer{}, err
	}
	if q.NeedsVisits() {
		return stats.ExecuteVisits(q, now, func(hours []int64) ([]stats.SegmentView, error) {
			return e.HourSegments(ctx, q.Site, hours)
		})
	}
	views, err := e.HourSegments(ctx, q.Site, Hours(q.Range.From, q.Range.To, now))
	if err != nil {
		return stats.Answer{}, err
	}
	return stats.ExecuteSegments(q, views)
}

// HourSegments returns the rows of each of site's hours as they are now,
// in the order of hours (an empty view for an hour without rows): a live
// query keeps per hour how many it has counted. Between two calls an
// hour's view only grows, unless its string expired and began again.
func (e *Engine) HourSegments(ctx context.Context, site string, hours []int64) ([]stats.SegmentView, error) {
	if len(hours) == 0 {
		return nil, nil
	}
	lens, err := e.store.RowLengths(ctx, site, hours)
	if err != nil {
		return nil, fmt.Errorf("read row lengths of %s: %w", site, err)
	}
	out := make([]stats.SegmentView, len(hours))
	for i, h := range hours {
		if lens[i] == 0 {
			continue
		}
		if out[i], err = e.hour(ctx, hourKey{site, h}, lens[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// hour returns the rows of one hour whose string is n bytes long, reading
// only the bytes the cache lacks.
func (e *Engine) hour(ctx context.Context, k hourKey, n int64) (stats.SegmentView, error) {
	c := e.entry(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n < c.len {
		// Shorter than what was decoded: the string expired and began
		// again (or a namespace was rebuilt); start over.
		e.charge(c, -c.bytes, -int64(c.seg.Len()))
		c.len, c.seg = 0, stats.NewSegment(k.hour, c.nums.numbers)
	}
	if n > c.len {
		b, err := e.store.RowBytes(ctx, k.site, k.hour, c.len, n)
		if err != nil {
			return stats.SegmentView{}, fmt.Errorf("read rows of %s hour %d: %w", k.site, k.hour, err)
		}
		// A decoder of its own: the segment's dictionaries keep each
		// text once, and a decoder kept with the hour would keep its
		// texts a second time, outside what the cache counts.
		rows, derr := factrow.NewDecoder().Decode(nil, b, k.hour)
		before, beforeRows := c.seg.Bytes(), c.seg.Len()
		if err := c.seg.Append(rows); err != nil {
			derr = err
		}
		e.charge(c, c.seg.Bytes()-before, int64(c.seg.Len()-beforeRows))
		if derr != nil {
			return stats.SegmentView{}, fmt.Errorf("rows of %s hour %d: %w", k.site, k.hour, derr)
		}
		// What was read, not n: a string that expired between the
		// length and the read comes back shorter, and is read anew next.
		c.len += int64(len(b))
	}
	return c.seg.View(), nil
}

// entry returns the cache entry of k, made if absent, as most recently used.
func (e *Engine) entry(k hourKey) *cachedHour {
	e.mu.Lock()
	defer e.mu.Unlock()
	if el, ok := e.hours[k]; ok {
		e.lru.MoveToFront(el)
		return el.Value.(*cachedHour)
	}
	nums := e.sites[k.site]
	if nums == nil {
		nums = &siteNumbers{numbers: stats.NewVisitorNumbers()}
		e.sites[k.site] = nums
	}
	c := &cachedHour{key: k, nums: nums, seg: stats.NewSegment(k.hour, nums.numbers)}
	e.hours[k] = e.lru.PushFront(c)
	return c
}

// charge counts add bytes and rows for c, and the visitors its site has
// numbered since, then drops the least recently used hours while the
// cache is over its bound. A dropped hour still in use by a query stays
// valid for it; the next query reads it again.
func (e *Engine) charge(c *cachedHour, add, rows int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c.bytes += add
	if el, ok := e.hours[c.key]; ok && el.Value == c {
		e.bytes += add
		c.rows += rows
		c.nums.rows += rows
	}
	if n := c.nums.numbers.Len(); n != c.nums.charged && e.sites[c.key.site] == c.nums {
		e.bytes += int64(n-c.nums.charged) * stats.VisitorBytes
		c.nums.charged = n
	}
	for e.bytes > max(e.cfg.CacheBytes, 0) && e.lru.Len() > 0 {
		e.drop(e.lru.Back().Value.(*cachedHour))
	}
	if s := e.sites[c.key.site]; s != nil && (s.rows == 0 || int64(s.charged) > 2*s.rows+1<<16) {
		e.renumber(c.key.site)
	}
}

// drop removes c from the cache. Called with e.mu held.
func (e *Engine) drop(c *cachedHour) {
	e.lru.Remove(e.hours[c.key])
	delete(e.hours, c.key)
	e.bytes -= c.bytes
	c.nums.rows -= c.rows
}

// renumber drops every cached hour of site and its visitor numbering,
// most (or all) of whose numbers are of rows no longer cached: the next
// queries read the hours again into a new numbering. Called with e.mu
// held.
func (e *Engine) renumber(site string) {
	for el := e.lru.Front(); el != nil; {
		next := el.Next()
		if c := el.Value.(*cachedHour); c.key.site == site {
			e.drop(c)
		}
		el = next
	}
	e.bytes -= int64(e.sites[site].charged) * stats.VisitorBytes
	delete(e.sites, site)
}

// CachedBytes is what the cache holds now, as counted against CacheBytes.
func (e *Engine) CachedBytes() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bytes
}
