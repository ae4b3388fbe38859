package redisagg

import (
	"cmp"
	"context"
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/pulsehq/pulse/factrow"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/stream"
)

//go:embed apply.lua
var applyLua string

// The apply script's ARGV:
//
//	1 shard, 2 first, 3 last, 4 fence, 5 dedup_from, 6 dedup_clock,
//	7 dimension limits "MAXVALUES MAXBYTES", 8 delta history, 9 deltas "1"/"0",
//	10 index of the position key in KEYS (0: do not write it), 11 number of parts,
//	then per part: index of its checkpoint key, ARGV index of its body.
//
// A part body: number of metrics, then per metric: name, dseq key index,
// dlog key index (both 0: no deltas), channel, number of hashes, number of HLLs; then each hash:
// key index, expire-at ms, step, bucket ms, total add, number of dims, and per
// dim: name, top zset key index (0: none), its expire-at, number of values,
// then value, add pairs; then each HLL: key index, expire-at, step, bucket,
// number of values, the values; then the fact rows: their number, each as
// key index, length key index, expire-at, hour start ms, the rows' bytes
// (segments past the first are the key's segment keys, Keys.rowSegment,
// in its slot); then the channel that
// tells live queries which row strings grew. After every part body, last: the TTL in ms
// of the checkpoint, delta counter and delta log keys (0: no expiry).
//
// Keys are passed by index so that KEYS lists every key exactly once, as
// Redis Cluster requires, and the encoding stays compact.

type bucketKey struct {
	step   string
	bucket int64
}

type hashOp struct {
	st     metric.Step
	bucket int64
	total  int64
	dims   map[string]map[string]int64
}

type hllOp struct {
	st     metric.Step
	bucket int64
	values map[string]struct{}
}

type metricPart struct {
	kind    metric.Kind
	hashes  map[bucketKey]*hashOp
	samples map[bucketKey]*hashOp // avg: the divisors of hashes
	hlls    map[bucketKey]*hllOp
}

type sitePart struct {
	site    string
	metrics map[string]*metricPart
	rows    []rowOp // by hour
}

// rowOp is the fact rows a commit appends to one hour of a site.
type rowOp struct {
	hour int64
	rows []byte
}

// split groups an update by site and metric, leaving out buckets whose
// retention is already over.
func (s *Store) split(u *metric.Update) ([]*sitePart, error) {
	now := s.cfg.Now().UnixMilli()
	sites := map[string]*sitePart{}
	part := func(site, m string) *metricPart {
		sp := sites[site]
		if sp == nil {
			sp = &sitePart{site: site, metrics: map[string]*metricPart{}}
			sites[site] = sp
		}
		mp := sp.metrics[m]
		if mp == nil {
			def, _ := s.cat.Metric(m)
			mp = &metricPart{kind: def.Kind, hashes: map[bucketKey]*hashOp{}, samples: map[bucketKey]*hashOp{}, hlls: map[bucketKey]*hllOp{}}
			sp.metrics[m] = mp
		}
		return mp
	}
	var expired int64
	if u != nil {
		n, err := s.splitCounts(u.Counts, now, part, func(mp *metricPart) map[bucketKey]*hashOp { return mp.hashes })
		if err != nil {
			return nil, err
		}
		expired += n
		n, err = s.splitCounts(u.Samples, now, part, func(mp *metricPart) map[bucketKey]*hashOp { return mp.samples })
		if err != nil {
			return nil, err
		}
		expired += n
		for k, vals := range u.Uniques {
			if len(vals) == 0 {
				continue
			}
			st, ok := s.cat.Step(k.Step)
			if !ok {
				return nil, fmt.Errorf("unique %s/%s: unknown step %q", k.Site, k.Metric, k.Step)
			}
			if st.ExpireAt(k.Bucket) <= now {
				expired++
				continue
			}
			part(k.Site, k.Metric).hlls[bucketKey{k.Step, k.Bucket}] = &hllOp{st: st, bucket: k.Bucket, values: vals}
		}
	}
	if u != nil {
		expired += s.splitRows(u.Rows, now, sites)
	}
	s.expired.Add(expired)
	out := make([]*sitePart, 0, len(sites))
	for _, sp := range sites {
		out = append(out, sp)
	}
	slices.SortFunc(out, func(a, b *sitePart) int { return strings.Compare(a.site, b.site) })
	return out, nil
}

// splitRows adds each site's fact rows to its part, by hour, leaving out
// hours already past the row retention, and returns how many it left out.
func (s *Store) splitRows(rows map[metric.RowKey][]byte, now int64, sites map[string]*sitePart) int64 {
	var expired int64
	for k, b := range rows {
		if len(b) == 0 {
			continue
		}
		if s.rowExpireAt(k.Hour) <= now {
			expired++
			continue
		}
		sp := sites[k.Site]
		if sp == nil {
			sp = &sitePart{site: k.Site, metrics: map[string]*metricPart{}}
			sites[k.Site] = sp
		}
		sp.rows = append(sp.rows, rowOp{hour: k.Hour, rows: b})
	}
	for _, sp := range sites {
		slices.SortFunc(sp.rows, func(a, b rowOp) int { return cmp.Compare(a.hour, b.hour) })
	}
	return expired
}

// rowExpireAt is when the row string of the hour starting at hour expires:
// the catalog's row retention after the hour ends.
func (s *Store) rowExpireAt(hour int64) int64 {
	return hour + factrow.HourMs + s.cat.RowRetention().Milliseconds()
}

// splitCounts adds counts to the hash ops that of picks from each metric's
// part and returns how many it left out as expired. A zero is kept for sum
// and avg metrics: an avg's sum hash must get every field its samples hash
// gets, so that both make the same choices at the dimension caps.
func (s *Store) splitCounts(counts map[metric.CountKey]int64, now int64, part func(site, m string) *metricPart,
	of func(*metricPart) map[bucketKey]*hashOp) (int64, error) {
	var expired int64
	for k, n := range counts {
		st, ok := s.cat.Step(k.Step)
		if !ok {
			return 0, fmt.Errorf("count %s/%s: unknown step %q", k.Site, k.Metric, k.Step)
		}
		if st.ExpireAt(k.Bucket) <= now {
			expired++
			continue
		}
		if n == 0 {
			if def, _ := s.cat.Metric(k.Metric); !def.Kind.Summed() {
				continue
			}
		}
		ops := of(part(k.Site, k.Metric))
		bk := bucketKey{k.Step, k.Bucket}
		h := ops[bk]
		if h == nil {
			h = &hashOp{st: st, bucket: k.Bucket, dims: map[string]map[string]int64{}}
			ops[bk] = h
		}
		if k.Dim == "" {
			h.total += n
			continue
		}
		vals := h.dims[k.Dim]
		if vals == nil {
			vals = map[string]int64{}
			h.dims[k.Dim] = vals
		}
		vals[k.Value] += n
	}
	return expired, nil
}

type encoder struct {
	keys []string
	idx  map[string]int
	body []any
}

func (e *encoder) key(k string) string {
	i, ok := e.idx[k]
	if !ok {
		e.keys = append(e.keys, k)
		i = len(e.keys)
		e.idx[k] = i
	}
	return strconv.Itoa(i)
}

func (e *encoder) add(v ...any) { e.body = append(e.body, v...) }

// encode builds KEYS and ARGV for the apply script over parts, writing the
// shard position too when withPos.
func (s *Store) encode(c *metric.Commit, parts []*sitePart, withPos bool) ([]string, []any) {
	e := &encoder{idx: map[string]int{}}
	header := 11 + 2*len(parts)
	heads := make([]any, 0, 2*len(parts))
	for _, sp := range parts {
		heads = append(heads, e.key(s.keys.checkpoint(sp.site)), strconv.Itoa(header+len(e.body)+1))
		s.encodePart(e, sp)
	}
	pos := "0"
	if withPos {
		pos = e.key(s.keys.position(c.Shard))
	}
	deltas := "1"
	if s.cfg.NoDeltas {
		deltas = "0"
	}
	args := make([]any, 0, header+len(e.body))
	args = append(args, c.Shard, c.First, c.Last, strconv.FormatInt(c.Pos.Fence, 10),
		c.Pos.DedupFrom, strconv.FormatInt(c.Pos.DedupClock, 10),
		strconv.Itoa(s.cfg.MaxDimValues)+" "+strconv.Itoa(s.cfg.MaxDimBytes), strconv.FormatInt(s.cfg.DeltaHistory, 10), deltas,
		pos, strconv.Itoa(len(parts)))
	args = append(args, heads...)
	args = append(args, e.body...)
	// Last, so that no other index moves: the TTL of the idle-site keys.
	ttl := int64(0)
	if s.cfg.IdleTTL > 0 {
		ttl = max(s.cfg.IdleTTL.Milliseconds(), 1)
	}
	args = append(args, strconv.FormatInt(ttl, 10))
	return e.keys, args
}

func (s *Store) encodePart(e *encoder, sp *sitePart) {
	names := make([]string, 0, len(sp.metrics))
	for m := range sp.metrics {
		names = append(names, m)
	}
	slices.Sort(names)
	e.add(strconv.Itoa(len(names)))
	for _, m := range names {
		mp := sp.metrics[m]
		// Sum and avg metrics have no delta log (their live form is not
		// built yet): index 0 tells the script to emit nothing.
		dseq, dlog := "0", "0"
		if !mp.kind.Summed() {
			dseq, dlog = e.key(s.keys.deltaSeq(sp.site, m)), e.key(s.keys.DeltaLog(sp.site, m))
		}
		e.add(m, dseq, dlog, s.keys.DeltaChannel(sp.site, m),
			strconv.Itoa(len(mp.hashes)+len(mp.samples)), strconv.Itoa(len(mp.hlls)))
		for _, h := range sortedOps(mp.hashes) {
			// An avg's sums and samples order their values alike, by the
			// samples, so both hashes fold the same values into (other).
			var by *hashOp
			if mp.kind == metric.Avg {
				by = mp.samples[bucketKey{h.st.Name, h.bucket}]
			}
			s.encodeHash(e, sp.site, m, s.keys.count(sp.site, m, h.st.Name, h.bucket), h, by, mp.kind != metric.Avg)
		}
		for _, h := range sortedOps(mp.samples) {
			s.encodeHash(e, sp.site, m, s.keys.samples(sp.site, m, h.st.Name, h.bucket), h, h, false)
		}
		for _, h := range sortedOps(mp.hlls) {
			e.add(e.key(s.keys.unique(sp.site, m, h.st.Name, h.bucket)), strconv.FormatInt(h.st.ExpireAt(h.bucket), 10),
				h.st.Name, strconv.FormatInt(h.bucket, 10), strconv.Itoa(len(h.values)))
			for v := range h.values {
				e.add(v)
			}
		}
	}
	if s.cfg.RowFiles != nil {
		// Applied parts' rows go to the files after the script (appendFiles).
		e.add("0", s.keys.RowChannel(sp.site))
		return
	}
	e.add(strconv.Itoa(len(sp.rows)))
	for _, r := range sp.rows {
		e.add(e.key(s.keys.rows(sp.site, r.hour)), e.key(s.keys.rowsLen(sp.site, r.hour)), strconv.FormatInt(s.rowExpireAt(r.hour), 10),
			strconv.FormatInt(r.hour, 10), r.rows)
	}
	e.add(s.keys.RowChannel(sp.site))
}

// encodeHash encodes one hash op of metric m at key, its values ordered by
// the adds of by (nil: its own), with top-K sets when withTop and the step
// keeps them.
func (s *Store) encodeHash(e *encoder, site, m, key string, h, by *hashOp, withTop bool) {
	exp := strconv.FormatInt(h.st.ExpireAt(h.bucket), 10)
	e.add(e.key(key), exp, h.st.Name, strconv.FormatInt(h.bucket, 10), strconv.FormatInt(h.total, 10), strconv.Itoa(len(h.dims)))
	dims := make([]string, 0, len(h.dims))
	for d := range h.dims {
		dims = append(dims, d)
	}
	slices.Sort(dims)
	for _, d := range dims {
		z := "0"
		if withTop && s.hasTop(h.st) {
			z = e.key(s.keys.top(site, m, d, h.st.Name, h.bucket))
		}
		vals := h.dims[d]
		rank := vals
		if by != nil {
			rank = by.dims[d]
		}
		e.add(d, z, exp, strconv.Itoa(len(vals)))
		// Largest first, so that when a bucket reaches MaxDimValues the
		// values that fold into metric.Other are the small ones.
		type va struct {
			v    string
			n, r int64
		}
		list := make([]va, 0, len(vals))
		for v, n := range vals {
			r := n
			if by != nil {
				r = rank[v]
			}
			list = append(list, va{v, n, r})
		}
		slices.SortFunc(list, func(a, b va) int {
			if c := cmp.Compare(b.r, a.r); c != 0 {
				return c
			}
			return strings.Compare(a.v, b.v)
		})
		for _, x := range list {
			e.add(x.v, strconv.FormatInt(x.n, 10))
		}
	}
}

func sortedOps[T any](m map[bucketKey]T) []T {
	ks := make([]bucketKey, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b bucketKey) int {
		if c := strings.Compare(a.step, b.step); c != 0 {
			return c
		}
		return cmp.Compare(a.bucket, b.bucket)
	})
	out := make([]T, len(ks))
	for i, k := range ks {
		out[i] = m[k]
	}
	return out
}

// Apply writes c atomically with its checkpoints: every site part of the
// update together with the site's checkpoint for c.Shard, then the shard
// position. A site part already applied (redelivery) is skipped, so Apply is
// idempotent. It returns ErrFenced when a newer writer owns the shard and
// ErrOverlap when a site holds part of c's range.
//
// On a single Redis node the whole commit is one script call. On Redis
// Cluster each site part is one script call in its site's slot and the
// position is written last; a crash in between leaves sites whose checkpoint
// makes the redelivered commit skip them.
func (s *Store) Apply(ctx context.Context, c *metric.Commit) error {
	if c.Last == "" || stream.CompareSeq(c.First, c.Last) > 0 {
		return fmt.Errorf("apply shard %s: bad range %q..%q", c.Shard, c.First, c.Last)
	}
	parts, err := s.split(c.Update)
	if err != nil {
		return fmt.Errorf("apply shard %s %s..%s: %w", c.Shard, c.First, c.Last, err)
	}
	if !s.cluster {
		keys, args := s.encode(c, parts, true)
		applied, err := s.run(ctx, keys, args)
		if err == nil {
			err = s.appendFiles(ctx, parts, applied)
		}
		if err != nil {
			return fmt.Errorf("apply shard %s %s..%s: %w", c.Shard, c.First, c.Last, err)
		}
	} else {
		// Refuse a fenced writer before it writes any site (the position
		// script checks again, but only after the site parts), and note the
		// commit's end as pending: a writer resuming after a crash between
		// the parts must end its first commit there (Pending).
		if err := s.mark(ctx, c.Shard, c.Last, c.Pos.Fence); err != nil {
			return fmt.Errorf("apply shard %s %s..%s: %w", c.Shard, c.First, c.Last, err)
		}
		for _, sp := range parts {
			keys, args := s.encode(c, []*sitePart{sp}, false)
			applied, err := s.run(ctx, keys, args)
			if err == nil {
				err = s.appendFiles(ctx, []*sitePart{sp}, applied)
			}
			if err != nil {
				return fmt.Errorf("apply shard %s %s..%s site %s: %w", c.Shard, c.First, c.Last, sp.site, err)
			}
		}
		keys, args := s.encode(c, nil, true)
		if _, err := s.run(ctx, keys, args); err != nil {
			return fmt.Errorf("apply shard %s %s..%s position: %w", c.Shard, c.First, c.Last, err)
		}
	}
	s.commits.Add(1)
	return nil
}

// run runs the apply script and returns, per part, whether it was
// applied ('1') or skipped as already applied ('0').
func (s *Store) run(ctx context.Context, keys []string, args []any) (string, error) {
	res, err := s.apply.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return "", refusal(err)
	}
	if len(res) != 5 {
		return "", fmt.Errorf("apply script answered %d values, want 5", len(res))
	}
	for i, c := range []*atomic.Int64{&s.overflowed, &s.parts, &s.skipped, &s.saturated} {
		n, _ := res[i].(int64)
		c.Add(n)
	}
	applied, _ := res[4].(string)
	return applied, nil
}

// appendFiles writes the rows of the parts the script applied to
// Config.RowFiles, and tells live queries which hours grew, as the script
// does when the rows live in Redis.
func (s *Store) appendFiles(ctx context.Context, parts []*sitePart, applied string) error {
	if s.cfg.RowFiles == nil {
		return nil
	}
	for i, sp := range parts {
		if i >= len(applied) || applied[i] != '1' || len(sp.rows) == 0 {
			continue
		}
		sig := make([]string, 0, len(sp.rows))
		for _, r := range sp.rows {
			n, err := s.cfg.RowFiles.AppendRows(sp.site, r.hour, r.rows)
			if err != nil {
				return err
			}
			sig = append(sig, strconv.FormatInt(r.hour, 10)+":"+strconv.FormatInt(n, 10))
		}
		if !s.cfg.NoDeltas {
			if err := s.rdb.Publish(ctx, s.keys.RowChannel(sp.site), strings.Join(sig, ",")).Err(); err != nil {
				return fmt.Errorf("tell live queries of the rows of %s: %w", sp.site, err)
			}
		}
	}
	return nil
}

// Position returns where the aggregation of shard stands; the zero Position
// when nothing was applied yet.
func (s *Store) Position(ctx context.Context, shard string) (metric.Position, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.position(shard)).Result()
	if err != nil {
		return metric.Position{}, fmt.Errorf("read position of shard %s: %w", shard, err)
	}
	p := metric.Position{Seq: m["seq"], DedupFrom: m["dedup_from"]}
	if v := m["dedup_clock"]; v != "" {
		if p.DedupClock, err = strconv.ParseInt(v, 10, 64); err != nil {
			return metric.Position{}, fmt.Errorf("read position of shard %s: dedup_clock %q: %w", shard, v, err)
		}
	}
	if v := m["fence"]; v != "" {
		if p.Fence, err = strconv.ParseInt(v, 10, 64); err != nil {
			return metric.Position{}, fmt.Errorf("read position of shard %s: fence %q: %w", shard, v, err)
		}
	}
	return p, nil
}
