package control

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"time"

	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/replay"
)

// Job states.
const (
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// JobStatus is a job as GET /v1/admin/jobs/:id shows it.
type JobStatus struct {
	ID        string        `json:"id"`
	Kind      string        `json:"kind"` // replay or verify
	Namespace string        `json:"namespace"`
	State     string        `json:"state"` // JobRunning, JobDone or JobFailed
	Error     string        `json:"error,omitempty"`
	Started   time.Time     `json:"started"`
	Finished  time.Time     `json:"finished,omitzero"`
	Progress  replay.Status `json:"progress"`
	Verify    *VerifyResult `json:"verify,omitempty"`
}

// VerifyResult is what a verify job found.
type VerifyResult struct {
	redisagg.Report
	From   int64  `json:"from"`
	To     int64  `json:"to"`
	Live   string `json:"live"`   // the namespace compared
	Stable bool   `json:"stable"` // live positions did not move during the last compare
	Rounds int    `json:"rounds"`
}

// job is one admin job (replay or verify) running in the node; the CLI
// polls its status.
type job struct {
	mu sync.Mutex
	st JobStatus
}

func (j *job) status() JobStatus {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.st
}

func (j *job) progress(s replay.Status) {
	j.mu.Lock()
	j.st.Progress = s
	j.mu.Unlock()
}

func (j *job) finish(res *VerifyResult, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.st.Verify = res
	j.st.Finished = time.Now().UTC()
	if err != nil {
		j.st.State, j.st.Error = JobFailed, err.Error()
		return
	}
	j.st.State = JobDone
}

// jobTable holds the jobs of this process, running or finished.
type jobTable struct {
	mu   sync.Mutex
	jobs map[string]*job
}

func (t *jobTable) add(kind, ns string) *job {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	j := &job{st: JobStatus{ID: kind + "-" + hex.EncodeToString(b), Kind: kind, Namespace: ns, State: JobRunning,
		Started: time.Now().UTC(), Progress: replay.Status{Phase: "starting"}}}
	t.mu.Lock()
	t.jobs[j.st.ID] = j
	t.mu.Unlock()
	return j
}

func (t *jobTable) get(id string) (JobStatus, bool) {
	t.mu.Lock()
	j := t.jobs[id]
	t.mu.Unlock()
	if j == nil {
		return JobStatus{}, false
	}
	return j.status(), true
}

func (t *jobTable) list() []JobStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]JobStatus, 0, len(t.jobs))
	for _, j := range t.jobs {
		out = append(out, j.status())
	}
	slices.SortFunc(out, func(a, b JobStatus) int { return a.Started.Compare(b.Started) })
	return out
}

// building returns the running job writing namespace ns, if any.
func (t *jobTable) building(ns string) *job {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, j := range t.jobs {
		if s := j.status(); s.State == JobRunning && s.Namespace == ns {
			return j
		}
	}
	return nil
}

// Jobs lists the jobs of this process, oldest first.
func (r *Runtime) Jobs() []JobStatus { return r.jobs.list() }

// Job returns the status of job id; false when this process has no such
// job (a restart forgets them).
func (r *Runtime) Job(id string) (JobStatus, bool) { return r.jobs.get(id) }
