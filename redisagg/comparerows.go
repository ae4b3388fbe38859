package redisagg

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/factrow"
	"github.com/pulsehq/pulse/stats"
)

// RowsMetric is the Metric of a Drift in the Stats API's fact rows: Step
// "1h", Bucket the hour, Live and Recomputed the rows each namespace holds
// and Value how many of them have no equal in the other.
const RowsMetric = "(stats rows)"

// compareRows compares the fact rows of every site's hours lying wholly in
// [from, to) in both namespaces as multisets: a replay appends the same
// rows in another order (events of several shards interleave differently),
// so the strings themselves need not be equal.
func compareRows(ctx context.Context, rdb redis.UniversalClient, rep *Report, from, to int64, live, recomputed Keys) error {
	hours, err := rowHoursIn(ctx, rdb, from, to, live, recomputed)
	if err != nil {
		return err
	}
	for _, h := range hours {
		var sets [2][]string
		for i, k := range []Keys{live, recomputed} {
			b, err := readRows(ctx, rdb, k, h.site, h.hour, 0, math.MaxInt64)
			if err != nil && err != redis.Nil {
				return fmt.Errorf("get rows of %s hour %d: %w", h.site, h.hour, err)
			}
			rows, err := factrow.NewDecoder().Decode(nil, b, h.hour)
			if err != nil {
				return fmt.Errorf("rows of %s hour %d in %s: %w", h.site, h.hour, k.ns, err)
			}
			sets[i] = canonicalRows(rows, h.hour)
		}
		rep.Counters++
		if differ := multisetDiff(sets[0], sets[1]); differ > 0 {
			rep.Drift = append(rep.Drift, Drift{Site: h.site, Metric: RowsMetric, Step: "1h", Bucket: h.hour,
				Value: strconv.Itoa(differ) + " rows differ", Live: int64(len(sets[0])), Recomputed: int64(len(sets[1]))})
		}
	}
	return nil
}

type siteHour struct {
	site string
	hour int64
}

// rowHoursIn lists, by site and hour, the row strings of hours wholly in
// [from, to) in any of the namespaces.
func rowHoursIn(ctx context.Context, rdb redis.UniversalClient, from, to int64, namespaces ...Keys) ([]siteHour, error) {
	var mu sync.Mutex
	seen := map[siteHour]bool{}
	for _, ns := range namespaces {
		prefix := "p:" + ns.ns + ":{"
		err := forEachKey(ctx, rdb, ns.bucketPattern("rows"), func(_ context.Context, _ redis.Cmdable, keys []string) error {
			mu.Lock()
			defer mu.Unlock()
			for _, k := range keys {
				site, hour, ok := strings.Cut(strings.TrimPrefix(k, prefix), "}:rows:")
				h, err := strconv.ParseInt(hour, 10, 64)
				if ok && err == nil && h >= from && h+factrow.HourMs <= to {
					seen[siteHour{site, h}] = true
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]siteHour, 0, len(seen))
	for h := range seen {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b siteHour) int {
		if c := strings.Compare(a.site, b.site); c != 0 {
			return c
		}
		return int(a.hour - b.hour)
	})
	return out, nil
}

// canonicalRows encodes each row with its props in key order, sorted.
func canonicalRows(rows []stats.Row, hour int64) []string {
	out := make([]string, len(rows))
	for i := range rows {
		r := rows[i]
		r.Props = slices.Clone(r.Props)
		slices.SortFunc(r.Props, func(a, b stats.RowProp) int { return strings.Compare(a.Key, b.Key) })
		out[i] = string(factrow.Append(nil, &r, hour))
	}
	slices.Sort(out)
	return out
}

// multisetDiff is how many elements of the sorted a and b have no equal in
// the other.
func multisetDiff(a, b []string) int {
	n, i, j := 0, 0, 0
	for i < len(a) && j < len(b) {
		switch c := strings.Compare(a[i], b[j]); {
		case c == 0:
			i++
			j++
		case c < 0:
			n++
			i++
		default:
			n++
			j++
		}
	}
	return n + len(a) - i + len(b) - j
}
