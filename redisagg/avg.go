package redisagg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/metric"
)

// average reads an avg metric: per bucket (and per value of q.GroupBy) the
// sum from the count hash and, from the samples hash, the number of events
// behind it. Series then holds the sums in Points and the numbers in
// Samples; the reader divides. A group_by reads whole hashes (an avg keeps
// no top-K sets: the largest averages are no sum of bucket scores) and
// picks the q.Limit values with the most events over the range.
func (s *Store) average(ctx context.Context, q SeriesQuery, p plan) (Result, error) {
	pipe := s.rdb.Pipeline()
	sums := make([]redis.Cmder, len(p.buckets))
	ns := make([]redis.Cmder, len(p.buckets))
	for i, b := range p.buckets {
		sk := s.keys.samples(q.Site, q.Metric, p.step.Name, b)
		if q.GroupBy == "" {
			sums[i], ns[i] = pipe.HGet(ctx, p.keys[i], fieldTotal), pipe.HGet(ctx, sk, fieldTotal)
		} else {
			sums[i], ns[i] = pipe.HGetAll(ctx, p.keys[i]), pipe.HGetAll(ctx, sk)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Result{}, fmt.Errorf("read averages %s/%s: %w", q.Site, q.Metric, err)
	}
	r := Result{Metric: q.Metric, Step: p.step.Name}
	if q.GroupBy == "" {
		sr := Series{Labels: map[string]string{}, Points: make([][2]int64, len(p.buckets)), Samples: make([]int64, len(p.buckets))}
		for i, b := range p.buckets {
			sum, err1 := hashInt(sums[i])
			n, err2 := hashInt(ns[i])
			if err := errors.Join(err1, err2); err != nil {
				return Result{}, fmt.Errorf("read averages %s/%s: %w", q.Site, q.Metric, err)
			}
			sr.Points[i], sr.Samples[i] = [2]int64{b, sum}, n
		}
		r.Series = []Series{sr}
		return r, nil
	}
	prefix := q.GroupBy + fieldSep
	sumBy := make([]map[string]int64, len(p.buckets))
	nBy := make([]map[string]int64, len(p.buckets))
	events := map[string]int64{}
	for i := range p.buckets {
		var err error
		if sumBy[i], err = hashFields(sums[i], prefix); err != nil {
			return Result{}, fmt.Errorf("read averages %s/%s: %w", q.Site, q.Metric, err)
		}
		if nBy[i], err = hashFields(ns[i], prefix); err != nil {
			return Result{}, fmt.Errorf("read averages %s/%s: %w", q.Site, q.Metric, err)
		}
		for v, n := range nBy[i] {
			events[v] += n
		}
	}
	names := metric.Largest(events, q.limit())
	r.Series = make([]Series, 0, len(names))
	for _, v := range names {
		sr := Series{Labels: map[string]string{q.GroupBy: v}, Points: make([][2]int64, len(p.buckets)), Samples: make([]int64, len(p.buckets))}
		for i, b := range p.buckets {
			sr.Points[i], sr.Samples[i] = [2]int64{b, sumBy[i][v]}, nBy[i][v]
		}
		r.Series = append(r.Series, sr)
	}
	return r, nil
}

// hashInt is the integer an HGET read; 0 for a missing field.
func hashInt(c redis.Cmder) (int64, error) {
	sc, _ := c.(*redis.StringCmd)
	if sc == nil {
		return 0, fmt.Errorf("%s: not a string reply", c.Name())
	}
	v, err := sc.Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%v: %q: %w", sc.Args(), v, err)
	}
	return n, nil
}

// hashFields returns the value fields under prefix of an HGETALL, by value.
func hashFields(c redis.Cmder, prefix string) (map[string]int64, error) {
	mc, _ := c.(*redis.MapStringStringCmd)
	if mc == nil {
		return nil, fmt.Errorf("%s: not a hash reply", c.Name())
	}
	m, err := mc.Result()
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for f, val := range m {
		v, ok := strings.CutPrefix(f, prefix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%v field %q: %w", mc.Args()[1], f, err)
		}
		out[v] = n
	}
	return out, nil
}
