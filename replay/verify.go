package replay

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

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

// Compare reads every count and unique bucket of the catalog's metrics
// lying wholly in [from, to) in namespaces live and recomputed and lists
// every counter that differs. Unique metrics compare their PFCOUNT.
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
	type bkey struct {
		site, metric, step, kind string
		bucket                   int64
	}
	keys := map[bkey]bool{}
	for _, ns := range []string{live, recomputed} {
		for _, kind := range []string{"c", "u"} {
			err := scan(ctx, rdb, "p:"+ns+":{*}:"+kind+":*", func(k string) {
				site, m, step, b, ok := parseBucketKey(k, ns, kind)
				if !ok {
					return
				}
				if _, known := cat.Metric(m); !known {
					return
				}
				w, ok := widths[step]
				if !ok || b < from || b+w > to {
					return
				}
				keys[bkey{site, m, step, kind, b}] = true
			})
			if err != nil {
				return rep, err
			}
		}
	}
	ordered := make([]bkey, 0, len(keys))
	for k := range keys {
		ordered = append(ordered, k)
	}
	sort.Slice(ordered, func(i, j int) bool {
		a, b := ordered[i], ordered[j]
		if a.site != b.site {
			return a.site < b.site
		}
		if a.metric != b.metric {
			return a.metric < b.metric
		}
		if a.step != b.step {
			return widths[a.step] < widths[b.step]
		}
		return a.bucket < b.bucket
	})
	for _, k := range ordered {
		rep.Buckets++
		name := func(ns string) string {
			return fmt.Sprintf("p:%s:{%s}:%s:%s:%s:%d", ns, k.site, k.kind, k.metric, k.step, k.bucket)
		}
		if k.kind == "u" {
			a, err := rdb.PFCount(ctx, name(live)).Result()
			if err != nil {
				return rep, fmt.Errorf("pfcount %s: %w", name(live), err)
			}
			b, err := rdb.PFCount(ctx, name(recomputed)).Result()
			if err != nil {
				return rep, fmt.Errorf("pfcount %s: %w", name(recomputed), err)
			}
			rep.Counters++
			if a != b {
				rep.Drift = append(rep.Drift, Drift{Site: k.site, Metric: k.metric, Step: k.step, Bucket: k.bucket, Live: a, Recomputed: b})
			}
			continue
		}
		a, err := rdb.HGetAll(ctx, name(live)).Result()
		if err != nil {
			return rep, fmt.Errorf("hgetall %s: %w", name(live), err)
		}
		b, err := rdb.HGetAll(ctx, name(recomputed)).Result()
		if err != nil {
			return rep, fmt.Errorf("hgetall %s: %w", name(recomputed), err)
		}
		fields := map[string]bool{}
		for f := range a {
			fields[f] = true
		}
		for f := range b {
			fields[f] = true
		}
		sorted := make([]string, 0, len(fields))
		for f := range fields {
			if !strings.HasPrefix(f, "#") { // derived: distinct values of a dimension
				sorted = append(sorted, f)
			}
		}
		sort.Strings(sorted)
		for _, f := range sorted {
			rep.Counters++
			x, _ := strconv.ParseInt(a[f], 10, 64)
			y, _ := strconv.ParseInt(b[f], 10, 64)
			if x == y {
				continue
			}
			d := Drift{Site: k.site, Metric: k.metric, Step: k.step, Bucket: k.bucket, Live: x, Recomputed: y}
			if f != "_" {
				d.Dim, d.Value, _ = strings.Cut(f, "\x1f")
			}
			rep.Drift = append(rep.Drift, d)
		}
	}
	return rep, nil
}

// parseBucketKey splits p:NS:{SITE}:KIND:METRIC:STEP:BUCKET.
func parseBucketKey(k, ns, kind string) (site, m, step string, bucket int64, ok bool) {
	rest, found := strings.CutPrefix(k, "p:"+ns+":{")
	if !found {
		return
	}
	site, rest, found = strings.Cut(rest, "}:"+kind+":")
	if !found {
		return
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return
	}
	b, err := strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil {
		return
	}
	rest = rest[:i]
	j := strings.LastIndexByte(rest, ':')
	if j < 0 {
		return
	}
	return site, rest[:j], rest[j+1:], b, true
}

// scan calls fn for every key matching pattern, on every master of a
// cluster.
func scan(ctx context.Context, rdb redis.UniversalClient, pattern string, fn func(string)) error {
	one := func(ctx context.Context, c redis.Cmdable) ([]string, error) {
		var out []string
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return nil, fmt.Errorf("scan %s: %w", pattern, err)
			}
			out = append(out, keys...)
			if next == 0 {
				return out, nil
			}
			cursor = next
		}
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		results := make(chan []string, 64)
		var all []string
		done := make(chan struct{})
		go func() {
			for ks := range results {
				all = append(all, ks...)
			}
			close(done)
		}()
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			ks, err := one(ctx, c)
			if err == nil {
				results <- ks
			}
			return err
		})
		close(results)
		<-done
		if err != nil {
			return err
		}
		for _, k := range all {
			fn(k)
		}
		return nil
	}
	ks, err := one(ctx, rdb)
	if err != nil {
		return err
	}
	for _, k := range ks {
		fn(k)
	}
	return nil
}
