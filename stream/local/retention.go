package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Run enforces retention now and then every RetentionEvery until ctx is
// done, when it returns nil. Errors deleting a segment are logged and
// retried on the next pass.
func (l *Log) Run(ctx context.Context) error {
	t := time.NewTicker(l.cfg.RetentionEvery)
	defer t.Stop()
	for {
		if err := l.enforceRetention(); err != nil {
			if errors.Is(err, ErrClosed) {
				return nil
			}
			l.cfg.Logger.Error("retention", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// enforceRetention deletes the sealed segments that are too old, then the
// oldest sealed segments while the log is over its size.
func (l *Log) enforceRetention() error {
	l.retainMu.Lock()
	defer l.retainMu.Unlock()
	l.closeMu.RLock()
	closed := l.closed
	l.closeMu.RUnlock()
	if closed {
		return ErrClosed
	}
	var errs []error
	cutoff := l.cfg.Now().Add(-l.cfg.RetentionAge).UnixMilli()
	for _, s := range l.shards {
		for {
			g := s.oldestSealed()
			if g == nil || g.lastMs >= cutoff {
				break
			}
			if err := l.deleteSegment(s, g, "age"); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	for l.totalBytes() > l.cfg.RetentionBytes {
		// The oldest sealed segment of any shard, by its first record.
		var victim *segment
		var owner *shard
		for _, s := range l.shards {
			if g := s.oldestSealed(); g != nil && (victim == nil || g.firstMs < victim.firstMs) {
				victim, owner = g, s
			}
		}
		if victim == nil {
			break // only active segments left
		}
		if err := l.deleteSegment(owner, victim, "size"); err != nil {
			errs = append(errs, err)
			break
		}
	}
	return errors.Join(errs...)
}

// oldestSealed returns the shard's first segment unless it is the active
// one. Its fields are stable: only the active segment changes.
func (s *shard) oldestSealed() *segment {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.segs) < 2 {
		return nil
	}
	return s.segs[0]
}

func (l *Log) totalBytes() int64 {
	var n int64
	for _, s := range l.shards {
		s.mu.RLock()
		for _, g := range s.segs {
			n += g.size
		}
		s.mu.RUnlock()
	}
	return n
}

// deleteSegment takes g off the shard's list first, so readers move on to
// the next one, then closes it once no reader is inside and removes it.
func (l *Log) deleteSegment(s *shard, g *segment, why string) error {
	s.mu.Lock()
	if len(s.segs) < 2 || s.segs[0] != g {
		s.mu.Unlock()
		return nil
	}
	s.segs = s.segs[1:]
	s.mu.Unlock()
	if err := g.close(); err != nil {
		l.cfg.Logger.Warn("close deleted segment", slog.String("segment", g.path), slog.Any("err", err))
	}
	if err := os.Remove(g.path); err != nil {
		return fmt.Errorf("retention (%s) shard %s: remove %s: %w", why, s.id, g.path, err)
	}
	l.cfg.Logger.Info("segment deleted", slog.String("shard", s.id), slog.String("why", why),
		slog.Uint64("first", g.base), slog.Uint64("last", g.last), slog.Int64("bytes", g.size))
	return nil
}
