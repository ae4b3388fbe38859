package control

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/pulsehq/pulse/namespace"
)

// Namespaces is the registry as it stands.
func (r *Runtime) Namespaces(ctx context.Context) (namespace.Doc, error) {
	return r.reg.Load(ctx)
}

// Promote makes name current and returns once this node follows it; prev
// is the namespace current before. It fails with namespace.ErrConflict
// while a job builds name or when the stream lost records name needs.
func (r *Runtime) Promote(ctx context.Context, name string) (prev string, err error) {
	if j := r.jobs.building(name); j != nil {
		return "", fmt.Errorf("%w: namespace %s is being built by job %s", namespace.ErrConflict, name, j.status().ID)
	}
	if err := r.checkTail(ctx, name); err != nil {
		return "", err
	}
	prev, err = r.reg.Promote(ctx, name)
	if err != nil {
		return "", err
	}
	return prev, r.sync(ctx)
}

// Drop removes a namespace that is not current from the registry and
// deletes its keys; it returns how many keys it deleted.
func (r *Runtime) Drop(ctx context.Context, name string) (int64, error) {
	if j := r.jobs.building(name); j != nil {
		return 0, fmt.Errorf("%w: namespace %s is being built by job %s", namespace.ErrConflict, name, j.status().ID)
	}
	if name == r.cur.Load().Info.Name {
		return 0, fmt.Errorf("%w: namespace %s is current; promote another one first", namespace.ErrConflict, name)
	}
	if err := r.reg.Remove(ctx, name); err != nil {
		return 0, err
	}
	if err := r.dropRows(name); err != nil {
		return 0, err
	}
	return namespace.DropKeys(ctx, r.cfg.Redis, name)
}

// checkTail refuses a promote that would lose events: the live aggregator
// continues from the positions the replay ended at, so the stream must
// still hold the records after them. When retention trimmed some, the
// namespace must catch up first (pulse replay again resumes it, reading
// them from the archive).
func (r *Runtime) checkTail(ctx context.Context, name string) error {
	src := r.cfg.Stream
	if src == nil {
		return nil // a push-only node: the aggregate nodes check nothing either
	}
	d, err := r.reg.Load(ctx)
	if err != nil {
		return err
	}
	info, ok := d.Find(name)
	if !ok {
		return fmt.Errorf("%w: %s", namespace.ErrNotFound, name)
	}
	v, err := r.view(*info, true)
	if err != nil {
		return err
	}
	shards, err := src.Shards(ctx)
	if err != nil {
		return fmt.Errorf("promote %s: list shards: %w", name, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, sh := range shards {
		g.Go(func() error {
			pos, err := v.Store.Position(gctx, sh.ID)
			if err != nil {
				return fmt.Errorf("promote %s: position of shard %s: %w", name, sh.ID, err)
			}
			b, err := src.Read(gctx, sh.ID, pos.Seq, 1)
			if err != nil {
				return fmt.Errorf("promote %s: read shard %s after %q: %w", name, sh.ID, pos.Seq, err)
			}
			if b.Trimmed {
				return fmt.Errorf("%w: the stream no longer holds shard %s's records after %s, where namespace %s ended; run pulse replay --namespace %s again to catch up from the archive, then promote",
					namespace.ErrConflict, sh.ID, pos.Seq, name, name)
			}
			return nil
		})
	}
	return g.Wait()
}
