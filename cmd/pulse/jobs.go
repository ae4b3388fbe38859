package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pulsehq/pulse/namespace"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/replay"
)

// job is one admin job (replay or verify) running in the server. Its
// status is polled by the CLI; jobs live in memory only (a replay's
// progress is in its namespace, so re-running it after a restart resumes).
type job struct {
	mu sync.Mutex
	st jobStatus
}

// jobStatus is the JSON of GET /v1/admin/jobs/:id.
type jobStatus struct {
	ID        string        `json:"id"`
	Kind      string        `json:"kind"` // replay or verify
	Namespace string        `json:"namespace"`
	State     string        `json:"state"` // running, done, failed
	Error     string        `json:"error,omitempty"`
	Started   time.Time     `json:"started"`
	Finished  time.Time     `json:"finished,omitzero"`
	Progress  replay.Status `json:"progress"`
	Verify    *verifyResult `json:"verify,omitempty"`
}

type verifyResult struct {
	redisagg.Report
	From   int64  `json:"from"`
	To     int64  `json:"to"`
	Live   string `json:"live"`
	Stable bool   `json:"stable"` // live positions did not move during the compare
	Rounds int    `json:"rounds"`
}

func (j *job) status() jobStatus {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.st
}

func (j *job) progress(s replay.Status) {
	j.mu.Lock()
	j.st.Progress = s
	j.mu.Unlock()
}

func (j *job) finish(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.st.Finished = time.Now().UTC()
	if err != nil {
		j.st.State, j.st.Error = "failed", err.Error()
		return
	}
	j.st.State = "done"
}

type jobTable struct {
	mu   sync.Mutex
	jobs map[string]*job
}

func (t *jobTable) add(kind, ns string) *job {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	j := &job{st: jobStatus{ID: kind + "-" + hex.EncodeToString(b), Kind: kind, Namespace: ns, State: "running",
		Started: time.Now().UTC(), Progress: replay.Status{Phase: "starting"}}}
	t.mu.Lock()
	t.jobs[j.st.ID] = j
	t.mu.Unlock()
	return j
}

func (t *jobTable) get(id string) *job {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.jobs[id]
}

func (t *jobTable) list() []jobStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]jobStatus, 0, len(t.jobs))
	for _, j := range t.jobs {
		out = append(out, j.status())
	}
	slices.SortFunc(out, func(a, b jobStatus) int { return a.Started.Compare(b.Started) })
	return out
}

// building returns the running job writing namespace ns, if any.
func (t *jobTable) building(ns string) *job {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, j := range t.jobs {
		if s := j.status(); s.State == "running" && s.Namespace == ns {
			return j
		}
	}
	return nil
}

// source is the chained archive-then-stream source of a build.
func (r *nsRuntime) source(from, to int64) *replay.Source {
	cfg := replay.SourceConfig{Archive: r.arch, From: from, To: to}
	if r.arch != nil && r.archCk != nil {
		ck := r.archCk
		cfg.Durable = func(ctx context.Context, shard string) (string, error) {
			c, err := ck.Load(ctx, shard)
			return c.Durable, err
		}
	}
	return replay.NewSource(r.src, cfg)
}

// replayRequest is the body of POST /v1/admin/replay.
type replayRequest struct {
	Namespace     string `json:"namespace"`
	From          int64  `json:"from,omitempty"` // unix ms; 0 with To 0: everything
	To            int64  `json:"to,omitempty"`
	MetricsConfig string `json:"metrics_config,omitempty"`
}

// startReplay registers the namespace (or resumes one still building) and
// builds it in the background.
func (r *nsRuntime) startReplay(ctx context.Context, req replayRequest) (*job, error) {
	if r.src == nil {
		return nil, errNoStream
	}
	if j := r.jobs.building(req.Namespace); j != nil {
		return j, nil // already running: the caller polls it
	}
	info, err := r.reg.Create(ctx, namespace.Info{Name: req.Namespace, MetricsConfig: req.MetricsConfig, From: req.From, To: req.To})
	if err != nil {
		return nil, err
	}
	// A request with no range and no config resumes a namespace still
	// building with the parameters it was started with.
	bare := req.From == 0 && req.To == 0 && req.MetricsConfig == ""
	if !bare && (info.MetricsConfig != req.MetricsConfig || info.From != req.From || info.To != req.To) {
		return nil, fmt.Errorf("%w: namespace %s is being built with another metrics config or range; resume it with the same, or drop it", namespace.ErrConflict, req.Namespace)
	}
	v, err := r.view(info, true)
	if err != nil {
		return nil, err
	}
	j := r.jobs.add("replay", info.Name)
	r.g.Go(func() error {
		err := r.build(r.ctx, j, v, r.source(info.From, info.To))
		if err == nil {
			err = r.reg.SetState(r.ctx, info.Name, namespace.Ready)
		}
		if err != nil {
			r.log.Warn("replay failed", "namespace", info.Name, "err", err)
		} else {
			r.log.Info("replay done", "namespace", info.Name, "events", j.status().Progress.Events)
		}
		j.finish(err)
		return nil // a failed job must not stop the server
	})
	return j, nil
}

func (r *nsRuntime) build(ctx context.Context, j *job, v *nsView, src *replay.Source) error {
	defer src.Close()
	return replay.Build(ctx, src, v.store, replay.BuildConfig{
		Aggregator: r.aggConfig(v.cat, nil, r.log.With("job", j.st.ID)),
		Progress:   j.progress,
	})
}

// verifyRequest is the body of POST /v1/admin/verify.
type verifyRequest struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// maxVerifyRounds bounds how often verify extends its recomputation to
// follow live positions that moved while it compared.
const maxVerifyRounds = 5

// startVerify recomputes [from, to) from the archive and the stream into a
// scratch namespace with the current namespace's catalog, capped per shard
// at the live aggregator's positions, and compares bucket by bucket. If the
// live positions moved meanwhile it extends the recomputation to the new
// positions and compares again, up to maxVerifyRounds; Stable says whether
// the last compare saw the live aggregates hold still.
func (r *nsRuntime) startVerify(ctx context.Context, req verifyRequest) (*job, error) {
	if r.src == nil {
		return nil, errNoStream
	}
	if req.From >= req.To {
		return nil, fmt.Errorf("verify: from %d is not before to %d", req.From, req.To)
	}
	live := r.cur.Load()
	scratch := "verify-" + strconv.FormatInt(time.Now().UnixMilli(), 36)
	info, err := r.reg.Create(ctx, namespace.Info{Name: scratch, MetricsConfig: live.info.MetricsConfig, From: req.From, To: req.To})
	if err != nil {
		return nil, err
	}
	v, err := r.view(info, true)
	if err != nil {
		return nil, err
	}
	j := r.jobs.add("verify", scratch)
	r.g.Go(func() error {
		res, err := r.verify(r.ctx, j, live, v, req)
		// The scratch namespace goes whatever happened; a crash leaves it
		// listed (building), for pulse drop.
		dctx := context.WithoutCancel(r.ctx)
		if derr := r.reg.Remove(dctx, scratch); derr != nil {
			r.log.Warn("verify: remove scratch namespace", "namespace", scratch, "err", derr)
		} else if _, derr := namespace.DropKeys(dctx, r.rdb, scratch); derr != nil {
			r.log.Warn("verify: drop scratch namespace keys", "namespace", scratch, "err", derr)
		}
		j.mu.Lock()
		j.st.Verify = res
		j.mu.Unlock()
		j.finish(err)
		return nil
	})
	return j, nil
}

func (r *nsRuntime) verify(ctx context.Context, j *job, live, v *nsView, req verifyRequest) (*verifyResult, error) {
	src := r.source(req.From, req.To)
	defer src.Close()
	positions := func() (map[string]string, error) {
		shards, err := r.src.Shards(ctx)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, s := range shards {
			p, err := live.store.Position(ctx, s.ID)
			if err != nil {
				return nil, err
			}
			out[s.ID] = p.Seq
		}
		return out, nil
	}
	res := &verifyResult{From: req.From, To: req.To, Live: live.info.Name}
	pos, err := positions()
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
		if err := replay.Build(ctx, src, v.store, replay.BuildConfig{
			Aggregator: r.aggConfig(live.cat, nil, r.log.With("job", j.st.ID)),
			Progress:   j.progress,
		}); err != nil {
			return nil, err
		}
		rep, err := redisagg.Compare(ctx, r.rdb, live.cat, live.info.Name, v.info.Name, req.From, req.To)
		if err != nil {
			return nil, fmt.Errorf("verify: compare: %w", err)
		}
		res.Report = rep
		after, err := positions()
		if err != nil {
			return nil, fmt.Errorf("verify: live positions: %w", err)
		}
		if equalPositions(pos, after) {
			res.Stable = true
			break
		}
		pos = after
	}
	return res, nil
}

func equalPositions(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
