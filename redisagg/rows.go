package redisagg

import (
	"context"
	"fmt"
)

// RowLengths returns the byte length of the fact-row string (package
// factrow) of each of site's hours, 0 for an hour without rows, in one
// pipeline.
func (s *Store) RowLengths(ctx context.Context, site string, hours []int64) ([]int64, error) {
	if s.cfg.RowFiles != nil {
		return s.cfg.RowFiles.RowLengths(ctx, site, hours)
	}
	pipe := s.rdb.Pipeline()
	for _, h := range hours {
		pipe.StrLen(ctx, s.keys.rows(site, h))
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("length of the rows of %s: %w", site, err)
	}
	out := make([]int64, len(cmds))
	for i, c := range cmds {
		out[i] = c.(interface{ Val() int64 }).Val()
	}
	return out, nil
}

// RowBytes returns bytes [from, to) of the fact-row string of site's hour.
// Fewer bytes come back when the string is shorter (it expired).
func (s *Store) RowBytes(ctx context.Context, site string, hour, from, to int64) ([]byte, error) {
	if s.cfg.RowFiles != nil {
		return s.cfg.RowFiles.RowBytes(ctx, site, hour, from, to)
	}
	if to <= from {
		return nil, nil
	}
	b, err := s.rdb.GetRange(ctx, s.keys.rows(site, hour), from, to-1).Bytes()
	if err != nil {
		return nil, fmt.Errorf("rows of %s hour %d: %w", site, hour, err)
	}
	return b, nil
}

// RowChannelOf is Keys.RowChannel in the Store's namespace.
func (s *Store) RowChannelOf(site string) string { return s.keys.RowChannel(site) }
