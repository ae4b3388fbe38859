package redisagg

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// topRead is one run of the read script in "top" or "sum" mode: the limit
// values with the largest counts over a range, and their counts in each
// count hash of the range.
type topRead struct {
	seq    int64
	top    []TopEntry // count descending, then value ascending
	counts [][]int64  // counts[i][j]: top[j] in hashKeys[i]
}

// readTopK runs the read script over the top-K sets of one site, summed
// in Redis (exact: the sets hold the same numbers as the hashes), then
// reads the chosen values' counts of dimension dim from hashKeys: only the
// limit values cross the network, never a whole hash or set.
func (s *Store) readTopK(ctx context.Context, site, m, dim string, limit int, hashKeys, topKeys []string) (topRead, error) {
	keys := make([]string, 0, 2+len(hashKeys)+len(topKeys))
	keys = append(keys, s.keys.deltaSeq(site, m), s.keys.scratch(site))
	keys = append(keys, hashKeys...)
	keys = append(keys, topKeys...)
	return s.runGrouped(ctx, keys, hashKeys, string(readTop), strconv.Itoa(len(topKeys)), strconv.Itoa(limit), dim,
		strconv.Itoa(len(hashKeys)))
}

// runGrouped runs the read script and decodes { seq, { value, total, ... },
// counts of hash 1, ... }.
func (s *Store) runGrouped(ctx context.Context, keys, hashKeys []string, args ...any) (topRead, error) {
	res, err := s.read.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return topRead{}, err
	}
	if len(res) < 2 {
		return topRead{}, fmt.Errorf("%d replies, want at least 2", len(res))
	}
	var r topRead
	r.seq, _ = res[0].(int64)
	pairs, _ := res[1].([]any)
	type idx struct {
		e TopEntry
		i int // position in the reply, which orders the HMGET fields
	}
	list := make([]idx, 0, len(pairs)/2)
	for j := 0; j+1 < len(pairs); j += 2 {
		v, _ := pairs[j].(string)
		sc, _ := pairs[j+1].(string)
		f, err := strconv.ParseFloat(sc, 64) // a score, or a Lua-formatted integer
		if err != nil {
			return topRead{}, fmt.Errorf("total %q of %q: %w", sc, v, err)
		}
		list = append(list, idx{TopEntry{Value: v, Count: int64(f)}, j / 2})
	}
	slices.SortFunc(list, func(a, b idx) int {
		if c := cmp.Compare(b.e.Count, a.e.Count); c != 0 {
			return c
		}
		return strings.Compare(a.e.Value, b.e.Value)
	})
	r.top = make([]TopEntry, len(list))
	for j, x := range list {
		r.top[j] = x.e
	}
	if len(list) == 0 {
		return r, nil
	}
	if len(res) != 2+len(hashKeys) {
		return topRead{}, fmt.Errorf("%d replies for %d hashes", len(res), len(hashKeys))
	}
	r.counts = make([][]int64, len(hashKeys))
	for i := range hashKeys {
		row, _ := res[2+i].([]any)
		if len(row) != len(list) {
			return topRead{}, fmt.Errorf("%s: %d counts for %d values", hashKeys[i], len(row), len(list))
		}
		r.counts[i] = make([]int64, len(list))
		for j, x := range list {
			r.counts[i][j] = toInt(row[x.i])
		}
	}
	return r, nil
}

// grouped answers a group_by query at a step with top-K sets: the Limit
// values with the largest totals over the range from the sets, and their
// counts per bucket from the hashes, read atomically with the delta-log
// counter (Snapshot's seq).
func (s *Store) grouped(ctx context.Context, q SeriesQuery, p plan) (int64, Result, error) {
	tr, err := s.readTopK(ctx, q.Site, q.Metric, q.GroupBy, q.limit(), p.keys, p.topKeys)
	if err != nil {
		return 0, Result{}, fmt.Errorf("read %s/%s by %s: %w", q.Site, q.Metric, q.GroupBy, err)
	}
	r := Result{Metric: q.Metric, Step: p.step.Name, Series: make([]Series, 0, len(tr.top))}
	for j, e := range tr.top {
		sr := Series{Labels: map[string]string{q.GroupBy: e.Value}, Points: make([][2]int64, len(p.buckets))}
		for i, b := range p.buckets {
			sr.Points[i] = [2]int64{b, tr.counts[i][j]}
		}
		r.Series = append(r.Series, sr)
	}
	return tr.seq, r, nil
}
