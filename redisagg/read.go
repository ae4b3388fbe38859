package redisagg

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/metric"
)

//go:embed read.lua
var readLua string

// ErrQuery marks a query the store cannot answer as asked (unknown metric,
// step or dimension, a range too long); callers answer it with a 400.
var ErrQuery = errors.New("redisagg: bad query")

// MaxBuckets is the most buckets one series read covers.
const MaxBuckets = 5000

// topMaxBuckets is the most sorted sets one Top reads: it picks the finest
// step whose range fits.
const topMaxBuckets = 1500

// SeriesQuery asks for a metric's points over [From, To] (ms, aligned down to
// the step's buckets), optionally one series per value of GroupBy, the Limit
// (default 10) values with the largest totals over the range.
type SeriesQuery struct {
	Site, Metric, Step string
	From, To           int64
	GroupBy            string
	Limit              int
}

// Series is one labelled series; points are [bucket start ms, value]. The
// value is a count, or for sum and avg metrics a sum in 10^-Decimals units
// of the metric; an avg's Samples are, per point, how many events the sum
// holds.
type Series struct {
	Labels  map[string]string `json:"labels"`
	Points  [][2]int64        `json:"points"`
	Samples []int64           `json:"-"`
}

// Result is the answer to a SeriesQuery, the JSON of GET /v1/query.
type Result struct {
	Metric string   `json:"metric"`
	Step   string   `json:"step"`
	Series []Series `json:"series"`
}

// TopQuery asks for the K (default 10) values of Dim with the largest counts
// (sums, for a sum metric) over [From, To].
type TopQuery struct {
	Site, Metric, Dim string
	From, To          int64
	K                 int
}

// TopEntry is one value of a top-K answer; Count is a sum in 10^-Decimals
// units for a sum metric.
type TopEntry struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

type readMode string

const (
	readTotal readMode = "total"
	readAll   readMode = "all" // whole count hashes: group_by at a step without top-K sets
	readHLL   readMode = "hll"
	readTop   readMode = "top" // group_by at a step with top-K sets
)

type plan struct {
	def     metric.Def
	step    metric.Step
	buckets []int64
	keys    []string
	topKeys []string // readTop: the top-K set of each bucket
	mode    readMode
}

func (s *Store) plan(q SeriesQuery) (plan, error) {
	var p plan
	var ok bool
	if p.def, ok = s.cat.Metric(q.Metric); !ok {
		return p, fmt.Errorf("%w: unknown metric %q", ErrQuery, q.Metric)
	}
	if p.step, ok = s.cat.Step(q.Step); !ok {
		return p, fmt.Errorf("%w: unknown step %q", ErrQuery, q.Step)
	}
	from, to := p.step.Bucket(q.From), p.step.Bucket(q.To)
	if from > to {
		return p, fmt.Errorf("%w: from %d is after to %d", ErrQuery, q.From, q.To)
	}
	w := p.step.Width.Milliseconds()
	if n := (to-from)/w + 1; n > MaxBuckets {
		return p, fmt.Errorf("%w: %d buckets of %s, at most %d", ErrQuery, n, p.step.Name, MaxBuckets)
	}
	switch {
	case p.def.Kind == metric.Unique && q.GroupBy != "":
		return p, fmt.Errorf("%w: unique metric %q has no dimensions to group by", ErrQuery, q.Metric)
	case p.def.Kind == metric.Unique:
		p.mode = readHLL
	case q.GroupBy == "":
		p.mode = readTotal
	case !p.def.HasDim(q.GroupBy):
		return p, fmt.Errorf("%w: metric %q has no dimension %q", ErrQuery, q.Metric, q.GroupBy)
	case s.hasTop(p.step) && p.def.Kind != metric.Avg:
		p.mode = readTop
	default:
		p.mode = readAll
	}
	for b := from; b <= to; b += w {
		p.buckets = append(p.buckets, b)
		if p.mode == readHLL {
			p.keys = append(p.keys, s.keys.unique(q.Site, q.Metric, p.step.Name, b))
		} else {
			p.keys = append(p.keys, s.keys.count(q.Site, q.Metric, p.step.Name, b))
		}
		if p.mode == readTop {
			p.topKeys = append(p.topKeys, s.keys.top(q.Site, q.Metric, q.GroupBy, p.step.Name, b))
		}
	}
	return p, nil
}

// Series reads the points of q, with zeros for buckets without data. A
// group_by picks its values from the top-K sets where the step keeps them
// and reads only those values' counts; at a finer step it reads the whole
// count hashes (pipelined, so a long range does not hold Redis in one
// script), each bounded by MaxDimValues and MaxDimBytes.
func (s *Store) Series(ctx context.Context, q SeriesQuery) (Result, error) {
	p, err := s.plan(q)
	if err != nil {
		return Result{}, err
	}
	if p.def.Kind == metric.Avg {
		return s.average(ctx, q, p)
	}
	if p.mode == readTop {
		_, r, err := s.grouped(ctx, q, p)
		return r, err
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]redis.Cmder, len(p.keys))
	for i, k := range p.keys {
		switch p.mode {
		case readTotal:
			cmds[i] = pipe.HGet(ctx, k, fieldTotal)
		case readHLL:
			cmds[i] = pipe.PFCount(ctx, k)
		default:
			cmds[i] = pipe.HGetAll(ctx, k)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Result{}, fmt.Errorf("read series %s/%s: %w", q.Site, q.Metric, err)
	}
	raw := make([]any, len(cmds))
	for i, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return Result{}, fmt.Errorf("read series %s/%s %s: %w", q.Site, q.Metric, p.keys[i], err)
		}
		switch c := c.(type) {
		case *redis.StringCmd:
			raw[i] = c.Val()
		case *redis.IntCmd:
			raw[i] = c.Val()
		case *redis.MapStringStringCmd:
			raw[i] = c.Val()
		}
	}
	return s.build(q, p, raw)
}

// Snapshot is Series read atomically with the delta-log counter of the
// site's metric: the push service applies to it exactly the deltas with
// n > seq.
func (s *Store) Snapshot(ctx context.Context, q SeriesQuery) (int64, Result, error) {
	p, err := s.plan(q)
	if err != nil {
		return 0, Result{}, err
	}
	if p.def.Kind.Summed() {
		// Their deltas would carry fixed-point integers the push service
		// does not scale; until it does, they are read over REST only.
		return 0, Result{}, fmt.Errorf("%w: %s metric %q has no live deltas; read it with GET /v1/query", ErrQuery, p.def.Kind, q.Metric)
	}
	switch p.mode {
	case readTop:
		return s.grouped(ctx, q, p)
	case readAll:
		return s.snapshotHashes(ctx, q, p)
	}
	keys := append([]string{s.keys.deltaSeq(q.Site, q.Metric)}, p.keys...)
	res, err := s.read.Run(ctx, s.rdb, keys, string(p.mode)).Slice()
	if err != nil {
		return 0, Result{}, fmt.Errorf("read snapshot %s/%s: %w", q.Site, q.Metric, err)
	}
	if len(res) != len(keys) {
		return 0, Result{}, fmt.Errorf("read snapshot %s/%s: %d replies for %d keys", q.Site, q.Metric, len(res), len(keys))
	}
	seq, _ := res[0].(int64)
	r, err := s.build(q, p, res[1:])
	return seq, r, err
}

// snapshotHashes reads a group_by at a step without top-K sets (10s): the
// answer needs every value of every bucket, so it reads the whole count
// hashes, each bounded by MaxDimValues and MaxDimBytes, with the delta-log
// counter in one MULTI/EXEC (atomic like a script; all keys share the
// site's slot). A script would copy every field into Lua and back: three
// times the server time, measured on 90 hashes at their cap; summing there
// to return only the chosen values cost more still.
func (s *Store) snapshotHashes(ctx context.Context, q SeriesQuery, p plan) (int64, Result, error) {
	pipe := s.rdb.TxPipeline()
	seqCmd := pipe.Get(ctx, s.keys.deltaSeq(q.Site, q.Metric))
	cmds := make([]*redis.MapStringStringCmd, len(p.keys))
	for i, k := range p.keys {
		cmds[i] = pipe.HGetAll(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, Result{}, fmt.Errorf("read snapshot %s/%s: %w", q.Site, q.Metric, err)
	}
	seq, err := seqCmd.Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, Result{}, fmt.Errorf("read snapshot %s/%s: delta counter: %w", q.Site, q.Metric, err)
	}
	raw := make([]any, len(cmds))
	for i, c := range cmds {
		if err := c.Err(); err != nil {
			return 0, Result{}, fmt.Errorf("read snapshot %s/%s %s: %w", q.Site, q.Metric, p.keys[i], err)
		}
		raw[i] = c.Val()
	}
	r, err := s.build(q, p, raw)
	return seq, r, err
}

func toInt(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}

func (s *Store) build(q SeriesQuery, p plan, raw []any) (Result, error) {
	r := Result{Metric: q.Metric, Step: p.step.Name}
	if p.mode != readAll {
		sr := Series{Labels: map[string]string{}, Points: make([][2]int64, len(p.buckets))}
		for i, b := range p.buckets {
			sr.Points[i] = [2]int64{b, toInt(raw[i])}
		}
		r.Series = []Series{sr}
		return r, nil
	}
	prefix := q.GroupBy + fieldSep
	per := make([]map[string]int64, len(p.buckets))
	totals := map[string]int64{}
	for i, v := range raw {
		m, _ := v.(map[string]string)
		per[i] = map[string]int64{}
		for f, val := range m {
			name, ok := strings.CutPrefix(f, prefix)
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return Result{}, fmt.Errorf("read %s field %q: %w", p.keys[i], f, err)
			}
			per[i][name] = n
			totals[name] += n
		}
	}
	names := metric.Largest(totals, q.limit())
	r.Series = make([]Series, 0, len(names))
	for _, name := range names {
		sr := Series{Labels: map[string]string{q.GroupBy: name}, Points: make([][2]int64, len(p.buckets))}
		for i, b := range p.buckets {
			sr.Points[i] = [2]int64{b, per[i][name]}
		}
		r.Series = append(r.Series, sr)
	}
	return r, nil
}

// Top returns the K values of q.Dim with the largest counts over the range,
// from the sorted sets of the finest step whose range holds at most 1,500
// buckets, summed and cut to K inside Redis.
func (s *Store) Top(ctx context.Context, q TopQuery) ([]TopEntry, error) {
	def, ok := s.cat.Metric(q.Metric)
	if !ok {
		return nil, fmt.Errorf("%w: unknown metric %q", ErrQuery, q.Metric)
	}
	if def.Kind == metric.Avg {
		return nil, fmt.Errorf("%w: avg metric %q has no top-K (the largest averages are no sum of buckets); group it with GET /v1/query", ErrQuery, q.Metric)
	}
	if !def.HasDim(q.Dim) {
		return nil, fmt.Errorf("%w: metric %q has no dimension %q", ErrQuery, q.Metric, q.Dim)
	}
	if q.From > q.To {
		return nil, fmt.Errorf("%w: from %d is after to %d", ErrQuery, q.From, q.To)
	}
	steps := make([]metric.Step, 0, len(s.cat.Steps))
	for _, st := range s.cat.Steps {
		if s.hasTop(st) {
			steps = append(steps, st)
		}
	}
	slices.SortFunc(steps, func(a, b metric.Step) int { return cmp.Compare(a.Width, b.Width) })
	var keys []string
	for _, st := range steps {
		from, to, w := st.Bucket(q.From), st.Bucket(q.To), st.Width.Milliseconds()
		if (to-from)/w+1 > topMaxBuckets {
			continue
		}
		for b := from; b <= to; b += w {
			keys = append(keys, s.keys.top(q.Site, q.Metric, q.Dim, st.Name, b))
		}
		break
	}
	if keys == nil {
		return nil, fmt.Errorf("%w: range %d..%d is too long for top-K", ErrQuery, q.From, q.To)
	}
	k := q.K
	if k <= 0 {
		k = 10
	}
	tr, err := s.readTopK(ctx, q.Site, q.Metric, q.Dim, k, nil, keys)
	if err != nil {
		return nil, fmt.Errorf("read top %s/%s by %s: %w", q.Site, q.Metric, q.Dim, err)
	}
	return tr.top, nil
}

// limit is q.Limit, or the default of 10 values.
func (q SeriesQuery) limit() int {
	if q.Limit <= 0 {
		return 10
	}
	return q.Limit
}
