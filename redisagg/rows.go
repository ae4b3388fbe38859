package redisagg

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// rowSegment is the size of one segment of an hour's fact rows: apply.lua's
// ROWSEG (TestRowSegmentMatchesScript). Segment i holds the bytes [i*rowSegment,
// (i+1)*rowSegment) of the hour's rows, so an APPEND never grows a string past
// it. Just under 1 MiB, so that a full segment (with its header) fills one
// allocation of 1 MiB.
const rowSegment = 1048512

// RowLengths returns the byte length of the fact rows (package factrow)
// of each of site's hours, 0 for an hour without rows, in one pipeline.
func (s *Store) RowLengths(ctx context.Context, site string, hours []int64) ([]int64, error) {
	if s.cfg.RowFiles != nil {
		return s.cfg.RowFiles.RowLengths(ctx, site, hours)
	}
	pipe := s.rdb.Pipeline()
	lens := make([]*redis.StringCmd, len(hours))
	whole := make([]*redis.IntCmd, len(hours))
	for i, h := range hours {
		lens[i] = pipe.Get(ctx, s.keys.rowsLen(site, h))
		whole[i] = pipe.StrLen(ctx, s.keys.rows(site, h))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("length of the rows of %s: %w", site, err)
	}
	out := make([]int64, len(hours))
	for i := range hours {
		n, err := rowsLength(lens[i], whole[i])
		if err != nil {
			return nil, fmt.Errorf("length of the rows of %s hour %d: %w", site, hours[i], err)
		}
		out[i] = n
	}
	return out, nil
}

// rowsLength is the logical length of an hour's rows: its length key, or
// for rows written before segments (no length key) the one string's length.
func rowsLength(length *redis.StringCmd, whole *redis.IntCmd) (int64, error) {
	v, err := length.Result()
	if errors.Is(err, redis.Nil) {
		return whole.Val(), whole.Err()
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// RowBytes returns bytes [from, to) of the fact rows of site's hour.
// Fewer bytes come back when the rows are shorter (they expired).
func (s *Store) RowBytes(ctx context.Context, site string, hour, from, to int64) ([]byte, error) {
	if s.cfg.RowFiles != nil {
		return s.cfg.RowFiles.RowBytes(ctx, site, hour, from, to)
	}
	b, err := readRows(ctx, s.rdb, s.keys, site, hour, from, to)
	if err != nil {
		return nil, fmt.Errorf("rows of %s hour %d: %w", site, hour, err)
	}
	return b, nil
}

// readRows reads bytes [from, to) of the rows of site's hour in namespace
// k: from the segments that hold them, or from the one string of rows
// written before segments.
func readRows(ctx context.Context, rdb redis.UniversalClient, k Keys, site string, hour, from, to int64) ([]byte, error) {
	if to <= from {
		return nil, nil
	}
	length, err := rdb.Get(ctx, k.rowsLen(site, hour)).Int64()
	if errors.Is(err, redis.Nil) {
		b, err := rdb.GetRange(ctx, k.rows(site, hour), from, to-1).Bytes()
		if errors.Is(err, redis.Nil) {
			err = nil
		}
		return b, err
	}
	if err != nil {
		return nil, err
	}
	to = min(to, length)
	if to <= from {
		return nil, nil
	}
	pipe := rdb.Pipeline()
	type part struct {
		cmd  *redis.StringCmd
		want int64
	}
	var parts []part
	for seg := from / rowSegment; seg*rowSegment < to; seg++ {
		lo := max(from, seg*rowSegment) - seg*rowSegment
		hi := min(to, (seg+1)*rowSegment) - seg*rowSegment
		parts = append(parts, part{pipe.GetRange(ctx, k.rowSegment(site, hour, seg), lo, hi-1), hi - lo})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]byte, 0, to-from)
	for _, p := range parts {
		b, _ := p.cmd.Bytes()
		out = append(out, b...)
		if int64(len(b)) < p.want {
			// The segment expired or is cut short: what follows would not
			// line up.
			break
		}
	}
	return out, nil
}

// RowChannelOf is Keys.RowChannel in the Store's namespace.
func (s *Store) RowChannelOf(site string) string { return s.keys.RowChannel(site) }
