package control

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/namespace"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/replay"
)

// ReplayRequest is the body of POST /v1/admin/replay.
type ReplayRequest struct {
	Namespace     string `json:"namespace"`
	From          int64  `json:"from,omitempty"` // unix ms; 0 with To 0: everything
	To            int64  `json:"to,omitempty"`
	MetricsConfig string `json:"metrics_config,omitempty"`
}

// VerifyRequest is the body of POST /v1/admin/verify.
type VerifyRequest struct {
	From int64 `json:"from"` // unix ms
	To   int64 `json:"to"`
}

// maxVerifyRounds bounds how often verify extends its recomputation to
// follow live positions that moved while it compared.
const maxVerifyRounds = 5

// source is the chained archive-then-stream source of a build.
func (r *Runtime) source(from, to int64) *replay.Source {
	cfg := replay.SourceConfig{Archive: r.cfg.Archive, From: from, To: to,
		TimeRule: event.TimeRule{AllowedLateness: r.cfg.AllowedLateness}}
	if ck := r.cfg.ArchiveCheckpoints; r.cfg.Archive != nil && ck != nil {
		cfg.Durable = func(ctx context.Context, shard string) (string, error) {
			c, err := ck.Load(ctx, shard)
			return c.Durable, err
		}
	}
	return replay.NewSource(r.cfg.Stream, cfg)
}

// Replay registers the namespace (or resumes one still building) and
// builds it in a job; a job already building it is returned as is. A
// request with no range and no config resumes a namespace with the
// parameters it was started with.
func (r *Runtime) Replay(ctx context.Context, req ReplayRequest) (JobStatus, error) {
	if r.cfg.Stream == nil {
		return JobStatus{}, ErrNoStream
	}
	if j := r.jobs.building(req.Namespace); j != nil {
		return j.status(), nil // already running: the caller polls it
	}
	info, err := r.reg.Create(ctx, namespace.Info{Name: req.Namespace, MetricsConfig: req.MetricsConfig, From: req.From, To: req.To})
	if err != nil {
		return JobStatus{}, err
	}
	bare := req.From == 0 && req.To == 0 && req.MetricsConfig == ""
	if !bare && (info.MetricsConfig != req.MetricsConfig || info.From != req.From || info.To != req.To) {
		return JobStatus{}, fmt.Errorf("%w: namespace %s is being built with another metrics config or range; resume it with the same, or drop it", namespace.ErrConflict, req.Namespace)
	}
	v, err := r.view(info, true)
	if err != nil {
		return JobStatus{}, err
	}
	j := r.jobs.add("replay", info.Name)
	err = r.launch(ctx, func(ctx context.Context) error {
		src := r.source(info.From, info.To)
		defer src.Close()
		err := replay.Build(ctx, src, v.Store, replay.BuildConfig{
			Aggregator: r.aggConfig(v.Catalog, nil, r.log.With("job", j.st.ID)),
			Progress:   j.progress,
		})
		if err == nil {
			err = r.reg.SetState(ctx, info.Name, namespace.Ready)
		}
		if err != nil {
			r.log.Warn("replay failed", "namespace", info.Name, "err", err)
		} else {
			r.log.Info("replay done", "namespace", info.Name, "events", j.status().Progress.Events)
		}
		j.finish(nil, err)
		return nil // a failed job must not stop the node
	})
	if err != nil {
		j.finish(nil, err)
		return JobStatus{}, fmt.Errorf("start replay of %s: %w", info.Name, err)
	}
	return j.status(), nil
}

// Verify recomputes [from, to) from the archive and the stream into a
// scratch namespace with the current namespace's catalog, capped per shard
// at the live aggregator's positions, and compares bucket by bucket, in a
// job. If the live positions moved meanwhile it extends the recomputation
// to the new positions and compares again, up to maxVerifyRounds;
// VerifyResult.Stable says whether the last compare saw the live
// aggregates hold still.
func (r *Runtime) Verify(ctx context.Context, req VerifyRequest) (JobStatus, error) {
	if r.cfg.Stream == nil {
		return JobStatus{}, ErrNoStream
	}
	if req.From >= req.To {
		return JobStatus{}, fmt.Errorf("verify: from %d is not before to %d", req.From, req.To)
	}
	live := r.cur.Load()
	scratch := "verify-" + strconv.FormatInt(time.Now().UnixMilli(), 36)
	info, err := r.reg.Create(ctx, namespace.Info{Name: scratch, MetricsConfig: live.Info.MetricsConfig, From: req.From, To: req.To})
	if err != nil {
		return JobStatus{}, err
	}
	v, err := r.view(info, true)
	if err != nil {
		return JobStatus{}, err
	}
	j := r.jobs.add("verify", scratch)
	err = r.launch(ctx, func(ctx context.Context) error {
		res, err := r.verify(ctx, j, live, v, req)
		r.dropScratch(context.WithoutCancel(ctx), scratch)
		j.finish(res, err)
		return nil
	})
	if err != nil {
		r.dropScratch(context.WithoutCancel(ctx), scratch)
		j.finish(nil, err)
		return JobStatus{}, fmt.Errorf("start verify: %w", err)
	}
	return j.status(), nil
}

// dropScratch removes verify's scratch namespace, whatever happened; a
// crash leaves it listed (building), for pulse drop.
func (r *Runtime) dropScratch(ctx context.Context, scratch string) {
	if err := r.reg.Remove(ctx, scratch); err != nil {
		r.log.Warn("verify: remove scratch namespace", "namespace", scratch, "err", err)
	} else if _, err := namespace.DropKeys(ctx, r.cfg.Redis, scratch); err != nil {
		r.log.Warn("verify: drop scratch namespace keys", "namespace", scratch, "err", err)
	} else if err := r.dropRows(scratch); err != nil {
		r.log.Warn("verify: drop scratch namespace rows", "namespace", scratch, "err", err)
	}
}

func (r *Runtime) verify(ctx context.Context, j *job, live, v *View, req VerifyRequest) (*VerifyResult, error) {
	src := r.source(req.From, req.To)
	defer src.Close()
	res := &VerifyResult{From: req.From, To: req.To, Live: live.Info.Name}
	pos, err := r.positions(ctx, live)
	if err != nil {
		return nil, fmt.Errorf("verify: live positions: %w", err)
	}
	for res.Rounds < maxVerifyRounds {
		res.Rounds++
		for shard, seq := range pos {
			if err := src.SetCap(ctx, shard, seq); err != nil {
				return nil, err
			}
		}
		if err := replay.Build(ctx, src, v.Store, replay.BuildConfig{
			Aggregator: r.aggConfig(live.Catalog, nil, r.log.With("job", j.st.ID)),
			Progress:   j.progress,
		}); err != nil {
			return nil, err
		}
		rep, err := redisagg.Compare(ctx, r.cfg.Redis, live.Catalog, live.Info.Name, v.Info.Name, req.From, req.To)
		if err != nil {
			return nil, fmt.Errorf("verify: compare: %w", err)
		}
		res.Report = rep
		after, err := r.positions(ctx, live)
		if err != nil {
			return nil, fmt.Errorf("verify: live positions: %w", err)
		}
		if maps.Equal(pos, after) {
			res.Stable = true
			break
		}
		pos = after
	}
	return res, nil
}

// positions is where v stands in every shard of the stream.
func (r *Runtime) positions(ctx context.Context, v *View) (map[string]string, error) {
	shards, err := r.cfg.Stream.Shards(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range shards {
		p, err := v.Store.Position(ctx, s.ID)
		if err != nil {
			return nil, err
		}
		out[s.ID] = p.Seq
	}
	return out, nil
}
