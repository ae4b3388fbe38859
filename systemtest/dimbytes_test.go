package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
)

// The bounds of docs/redis-keys.md ("Memory per site-day") that the attack
// asserts: MEMORY USAGE of one bucket hash and of one top-K set whose
// dimension is at its cap (redisagg's TestSiteDayMemory measures them).
const (
	maxBucketHashBytes = 128 << 10
	maxTopSetBytes     = 176 << 10
)

const (
	longSite      = "dimbytes"      // the hostile paths go here
	longGoodSite  = "dimbytes-good" // the good traffic beside them
	longValues    = 1000
	longPathBytes = 2000
	longGood      = 60
)

// attackLongValues sends 1,000 distinct paths of about 2 KB to site
// dimbytes (issue 11 item 3), and good events to dimbytes-good. It needs a
// server started with --redis redis://...: it reads the site's keys. It
// asserts that the stored values are cut (at most 256 bytes, ending in
// "…"), that no bucket hash or top-K set of the site holds more than the
// documented bound, that no delta-log entry is larger than
// redisagg.MaxDeltaEntryBytes, and that the good events count exactly.
func attackLongValues(t *testing.T, ctx context.Context, s *server) string {
	t.Helper()
	rdb := serverRedis(t, s)
	now := time.Now()
	ua := userAgents[0].UA
	for start := 0; start < longValues; start += 250 {
		var b strings.Builder
		for i := start; i < start+250; i++ {
			path := fmt.Sprintf("/%04d/", i) + strings.Repeat("x", longPathBytes-6)
			fmt.Fprintf(&b, `{"id":"long-%d","site":%q,"type":"pageview","url":"https://example.com%s"}`+"\n", i, longSite, path)
		}
		if code, res, err := s.post(ctx, []byte(b.String()), ua); err != nil || code != http.StatusAccepted || res.Accepted != 250 {
			t.Fatalf("long paths %d..: %d %+v %v", start, code, res, err)
		}
	}
	tr := newTruth()
	r := rand.New(rand.NewPCG(uint64(now.UnixNano()), 3))
	var body []byte
	var evs []genEvent
	for i := range longGood {
		e := newGenEvent(r, i, now, r.IntN(len(userAgents)))
		e.Site = longGoodSite
		e.UA = ua // one User-Agent per request, as a browser sends
		e.Device, e.Bot = userAgents[0].Device, userAgents[0].Bot
		evs = append(evs, e)
		body = append(append(body, e.json()...), '\n')
	}
	if code, res, err := s.post(ctx, body, ua); err != nil || code != http.StatusAccepted || res.Accepted != longGood {
		t.Fatalf("good events: %d %+v %v", code, res, err)
	}
	for _, e := range evs {
		tr.add(e)
	}
	s.waitPageviews(t, ctx, longSite, longValues)
	good := waitGoodExact(ctx, t, s, tr, now)
	cut, other := checkCutValues(t, ctx, s)
	hash, zset, entry := largestKeys(t, ctx, rdb, s)
	if hash > maxBucketHashBytes || zset > maxTopSetBytes {
		t.Errorf("largest bucket hash %d bytes, top-K set %d bytes; the bounds are %d and %d", hash, zset, maxBucketHashBytes, maxTopSetBytes)
	}
	if entry > redisagg.MaxDeltaEntryBytes {
		t.Errorf("largest delta-log entry %d bytes, above %d", entry, redisagg.MaxDeltaEntryBytes)
	}
	return fmt.Sprintf("long values: %d distinct %d-byte paths stored cut to <= %d bytes with %q (%d values, %d events in (other)); "+
		"largest bucket hash %d B <= %d, top-K set %d B <= %d, delta entry %d B <= %d; %d good events exact",
		longValues, longPathBytes+19, metric.MaxValueBytes, metric.CutMark, cut, other,
		hash, maxBucketHashBytes, zset, maxTopSetBytes, entry, redisagg.MaxDeltaEntryBytes, good)
}

// waitGoodExact waits until every count query of the good site at 1m
// equals the truth and returns the number of good events.
func waitGoodExact(ctx context.Context, t *testing.T, s *server, tr *truth, now time.Time) int {
	t.Helper()
	from := now.Add(-time.Hour).UnixMilli()
	to := time.Now().Add(time.Minute).UnixMilli()
	var last string
	for {
		last = ""
		for _, cq := range countQueries {
			var got queryResult
			if err := s.get(ctx, "/v1/query", queryValues(longGoodSite, cq.Metric, "1m", cq.Dim, from, to), &got); err != nil {
				last = err.Error()
				break
			}
			if d := tr.diffCounts(longGoodSite, cq.Metric, "1m", cq.Dim, from, to, got); d != "" {
				last = d
				break
			}
		}
		if last == "" {
			return tr.size()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("good events differ from the truth: %s", last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkCutValues reads the site's top paths (all of them) and checks each
// is cut or (other), and that they sum to the events sent.
func checkCutValues(t *testing.T, ctx context.Context, s *server) (cut int, other int64) {
	t.Helper()
	var res struct {
		Top []redisagg.TopEntry `json:"top"`
	}
	q := url.Values{"site": {longSite}, "metric": {"pageviews"}, "dim": {"path"}, "from": {"-1h"}, "k": {"1000"}}
	if err := s.get(ctx, "/v1/top", q, &res); err != nil {
		t.Fatalf("top paths: %v", err)
	}
	var sum int64
	for _, e := range res.Top {
		sum += e.Count
		switch {
		case e.Value == metric.Other:
			other += e.Count
		case len(e.Value) <= metric.MaxValueBytes && strings.HasSuffix(e.Value, metric.CutMark) && utf8.ValidString(e.Value):
			cut++
		default:
			t.Errorf("stored path of %d bytes is not cut: %.40q...", len(e.Value), e.Value)
		}
	}
	if cut == 0 || sum != longValues {
		t.Errorf("top paths: %d cut values, counts sum to %d, want some cut and %d", cut, sum, longValues)
	}
	return cut, other
}

// largestKeys scans the hostile site's keys (redisagg.Keys.SitePattern in
// the current namespace) and returns the largest MEMORY USAGE of a hash
// and of a sorted set, and the largest delta-log entry.
func largestKeys(t *testing.T, ctx context.Context, rdb *redis.Client, s *server) (hash, zset int64, entry int) {
	t.Helper()
	keys := redisagg.KeysFor(currentNamespace(t, ctx, s))
	var hashes int
	iter := rdb.Scan(ctx, 0, keys.SitePattern(longSite), 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("type %s: %v", k, err)
		}
		switch typ {
		case "hash", "zset":
			n, err := rdb.MemoryUsage(ctx, k, 0).Result()
			if err != nil {
				t.Fatalf("memory usage %s: %v", k, err)
			}
			if typ == "zset" {
				zset = max(zset, n)
			} else {
				hashes++
				hash = max(hash, n)
			}
		case "stream":
			xs, err := rdb.XRange(ctx, k, "-", "+").Result()
			if err != nil {
				t.Fatalf("xrange %s: %v", k, err)
			}
			for _, x := range xs {
				d, _ := x.Values["d"].(string)
				entry = max(entry, len(d))
			}
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan %s: %v", keys.SitePattern(longSite), err)
	}
	if hashes == 0 || zset == 0 || entry == 0 {
		t.Fatalf("found %d hashes, sorted sets of up to %d bytes, entries of up to %d bytes under %s: wrong namespace?",
			hashes, zset, entry, keys.SitePattern(longSite))
	}
	return hash, zset, entry
}

// currentNamespace asks the admin API which namespace queries read.
func currentNamespace(t *testing.T, ctx context.Context, s *server) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url("/v1/admin/namespaces"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/admin/namespaces: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var d struct {
		Current string `json:"current"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &d) != nil || d.Current == "" {
		t.Fatalf("GET /v1/admin/namespaces: %s %s", resp.Status, b)
	}
	return d.Current
}
