package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pulsehq/pulse/aggregator"
)

// Store is the namespace's aggregate store: *redisagg.Store.
type Store interface {
	aggregator.Store
}

// Status is the progress of a Build, reported every poll.
type Status struct {
	Phase        string  `json:"phase"` // "archive" while any shard reads the archive, then "stream"
	Events       int64   `json:"events"`
	EventsPerSec float64 `json:"events_per_sec"`
	// Estimate is the events expected in all (read so far plus the
	// archive bytes left at the bytes per event seen so far); 0 when
	// unknown.
	Estimate     int64   `json:"estimate"`
	ETASeconds   float64 `json:"eta_seconds"`
	ArchiveBytes int64   `json:"archive_bytes"`
	ArchiveDone  int64   `json:"archive_done"`
}

// BuildConfig configures Build.
type BuildConfig struct {
	// Aggregator is the live aggregator's configuration (dedup window,
	// lateness, catalog): the same code and the same settings make the
	// same numbers. Its Registerer should be nil (a build is temporary).
	Aggregator aggregator.Config
	// Every is how often progress is polled; default 250ms.
	Every time.Duration
	// Progress, when set, is called with every poll's Status.
	Progress func(Status)
}

// Build aggregates src into st until every shard caught up with the
// stream (or its cap) and st's positions reached what src served; it
// returns ctx's error when ctx ends first. Build can be called again on the
// same store (with a fresh or the same Source): positions are in st, so it
// continues where it stopped.
func Build(ctx context.Context, src *Source, st Store, cfg BuildConfig) error {
	if cfg.Every <= 0 {
		cfg.Every = 250 * time.Millisecond
	}
	agg, err := aggregator.New(src, st, cfg.Aggregator)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- agg.Run(runCtx) }()
	stop := func() error {
		cancel()
		err := <-done
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		return err
	}

	start := time.Now()
	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	var r rate
	pos := func(ctx context.Context, shard string) (string, error) {
		p, err := st.Position(ctx, shard)
		return p.Seq, err
	}
	for {
		select {
		case <-ctx.Done():
			_ = stop()
			return ctx.Err()
		case err := <-done:
			if ctx.Err() != nil {
				return ctx.Err() // Run returns nil once ctx ended
			}
			if err == nil {
				err = errors.New("aggregator stopped")
			}
			return fmt.Errorf("replay: %w", err)
		case now := <-t.C:
			c := src.Counters()
			if cfg.Progress != nil {
				cfg.Progress(status(c, r.add(now, c.Events)))
			}
			// An error here is transient (the store did not answer, ctx
			// ending): poll again.
			if ok, err := src.caughtUp(ctx, pos); err == nil && ok {
				if err := stop(); err != nil {
					return fmt.Errorf("replay: %w", err)
				}
				if cfg.Progress != nil {
					c := src.Counters()
					s := status(c, float64(c.Events)/max(time.Since(start).Seconds(), 1e-3))
					s.Phase, s.Estimate, s.ETASeconds = "done", c.Events, 0
					cfg.Progress(s)
				}
				return nil
			}
		}
	}
}

func status(c Counters, perSec float64) Status {
	s := Status{Phase: "stream", Events: c.Events, EventsPerSec: perSec, ArchiveBytes: c.ArchiveBytes, ArchiveDone: c.ArchiveDone}
	if c.Shards == 0 || c.Tail < c.Shards {
		s.Phase = "archive"
	}
	s.Estimate = c.Events
	if c.ArchiveDone > 0 && c.ArchiveBytes > c.ArchiveDone {
		perByte := float64(c.Events) / float64(c.ArchiveDone)
		s.Estimate += int64(perByte * float64(c.ArchiveBytes-c.ArchiveDone))
	}
	if perSec > 0 {
		s.ETASeconds = float64(s.Estimate-s.Events) / perSec
	}
	return s
}
