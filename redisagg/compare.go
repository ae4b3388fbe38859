package redisagg

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/metric"
)

// Drift is one counter that differs between the live aggregates and the
// recomputation.
type Drift struct {
	Site       string `json:"site"`
	Metric     string `json:"metric"`
	Step       string `json:"step"`
	Bucket     int64  `json:"bucket"`          // start, unix ms
	Dim        string `json:"dim,omitempty"`   // "" for the bucket's total
	Value      string `json:"value,omitempty"` // the dimension's value
	Live       int64  `json:"live"`
	Recomputed int64  `json:"recomputed"`
}

// Report is the result of comparing two namespaces over a window.
type Report struct {
	From, To int64 `json:"-"`
	// Buckets and Counters are how many buckets and counters (fields of
	// count buckets, plus one per unique bucket) were compared.
	Buckets  int     `json:"buckets"`
	Counters int     `json:"counters"`
	Drift    []Drift `json:"drift"`
	// Steps lists the steps compared: those with a whole bucket in the
	// window (a bucket only partly inside is not compared: its live
	// counts include events outside the window).
	Steps []string `json:"steps"`
}

// bucketRef names one count or unique bucket, in whichever namespace.
type bucketRef struct {
	site, metric, step, kind string
	bucket                   int64
}

func (b bucketRef) key(k Keys) string { return k.bucket(b.site, b.kind, b.metric, b.step, b.bucket) }

// Compare reads every count and unique bucket of the catalog's metrics
// lying wholly in [from, to) in namespaces live and recomputed and lists
// every counter that differs. Unique metrics compare their PFCOUNT. The
// Stats API's fact rows of the hours wholly inside compare as multisets
// (RowsMetric); each hour counts as one counter.
func Compare(ctx context.Context, rdb redis.UniversalClient, cat *metric.Catalog, live, recomputed string, from, to int64) (Report, error) {
	rep := Report{From: from, To: to, Drift: []Drift{}}
	widths := map[string]int64{}
	for _, s := range cat.Steps {
		w := s.Width.Milliseconds()
		first := (from + w - 1) / w * w
		if first+w <= to {
			widths[s.Name] = w
			rep.Steps = append(rep.Steps, s.Name)
		}
	}
	a, b := KeysFor(live), KeysFor(recomputed)
	buckets, err := bucketsIn(ctx, rdb, cat, widths, from, to, a, b)
	if err != nil {
		return rep, err
	}
	for _, ref := range buckets {
		rep.Buckets++
		if err := compareBucket(ctx, rdb, &rep, ref, a, b); err != nil {
			return rep, err
		}
	}
	if err := compareRows(ctx, rdb, &rep, from, to, a, b); err != nil {
		return rep, err
	}
	return rep, nil
}

// bucketsIn lists, in report order (site, metric, step width, bucket), the
// count and unique buckets of the catalog's metrics and of the steps in
// widths that lie wholly in [from, to) in any of the namespaces.
func bucketsIn(ctx context.Context, rdb redis.UniversalClient, cat *metric.Catalog, widths map[string]int64, from, to int64, namespaces ...Keys) ([]bucketRef, error) {
	var mu sync.Mutex
	seen := map[bucketRef]bool{}
	for _, ns := range namespaces {
		for _, kind := range []string{kindCount, kindUnique, kindSamples} {
			err := forEachKey(ctx, rdb, ns.bucketPattern(kind), func(_ context.Context, _ redis.Cmdable, keys []string) error {
				mu.Lock()
				defer mu.Unlock()
				for _, k := range keys {
					site, m, step, b, ok := ns.parseBucket(k, kind)
					if !ok {
						continue
					}
					if _, known := cat.Metric(m); !known {
						continue
					}
					if w, ok := widths[step]; ok && b >= from && b+w <= to {
						seen[bucketRef{site, m, step, kind, b}] = true
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	ordered := make([]bucketRef, 0, len(seen))
	for b := range seen {
		ordered = append(ordered, b)
	}
	slices.SortFunc(ordered, func(a, b bucketRef) int {
		if c := strings.Compare(a.site, b.site); c != 0 {
			return c
		}
		if c := strings.Compare(a.metric, b.metric); c != 0 {
			return c
		}
		if c := cmp.Compare(widths[a.step], widths[b.step]); c != 0 {
			return c
		}
		return cmp.Compare(a.bucket, b.bucket)
	})
	return ordered, nil
}

// compareBucket compares one bucket of namespaces live and recomputed and
// adds what it compared, and any drift, to rep.
func compareBucket(ctx context.Context, rdb redis.UniversalClient, rep *Report, ref bucketRef, live, recomputed Keys) error {
	drift := Drift{Site: ref.site, Metric: ref.metric, Step: ref.step, Bucket: ref.bucket}
	if ref.kind == kindSamples {
		drift.Metric += " (samples)"
	}
	if ref.kind == kindUnique {
		var n [2]int64
		for i, k := range []string{ref.key(live), ref.key(recomputed)} {
			v, err := rdb.PFCount(ctx, k).Result()
			if err != nil {
				return fmt.Errorf("pfcount %s: %w", k, err)
			}
			n[i] = v
		}
		rep.Counters++
		if n[0] != n[1] {
			drift.Live, drift.Recomputed = n[0], n[1]
			rep.Drift = append(rep.Drift, drift)
		}
		return nil
	}
	var h [2]map[string]string
	for i, k := range []string{ref.key(live), ref.key(recomputed)} {
		v, err := rdb.HGetAll(ctx, k).Result()
		if err != nil {
			return fmt.Errorf("hgetall %s: %w", k, err)
		}
		h[i] = v
	}
	fields := map[string]bool{}
	for _, m := range h {
		for f := range m {
			if !strings.HasPrefix(f, distinctMark) { // derived: distinct values of a dimension
				fields[f] = true
			}
		}
	}
	for _, f := range slices.Sorted(maps.Keys(fields)) {
		rep.Counters++
		x, _ := strconv.ParseInt(h[0][f], 10, 64)
		y, _ := strconv.ParseInt(h[1][f], 10, 64)
		if x == y {
			continue
		}
		d := drift
		d.Live, d.Recomputed = x, y
		if f != fieldTotal {
			d.Dim, d.Value, _ = strings.Cut(f, fieldSep)
		}
		rep.Drift = append(rep.Drift, d)
	}
	return nil
}
