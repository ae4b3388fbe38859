package lease

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Run keeps this instance's membership and leases until ctx is cancelled,
// one round every Config.Renew (see the package doc); shards is called each
// round for the current shard list, which may change (reshard). Redis
// errors do not stop it: they are logged and counted, and leases not
// renewed in time are dropped. It returns nil once ctx is cancelled, after
// removing every lease from Leases; the keys stay in Redis until they
// expire or Leave deletes them.
func (m *Manager) Run(ctx context.Context, shards func(ctx context.Context) ([]string, error)) error {
	if shards == nil {
		return errors.New("lease: Run needs a shard list function")
	}
	m.mu.Lock()
	m.retired = nil
	m.mu.Unlock()
	defer m.stop()

	// The watcher reports leases past their local deadline even while a
	// Redis call of this loop is stuck (go-redis bounds socket I/O by its
	// ReadTimeout, not by ctx, unless ContextTimeoutEnabled).
	wctx, wcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.watch(wctx)
	}()
	defer wg.Wait()
	defer wcancel()

	// The first round only announces this member: instances started together
	// then see each other before taking shards, instead of the first one
	// taking all of them and handing most back.
	first := true
	round := time.NewTimer(0)
	defer round.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-round.C:
			m.round(ctx, shards, !first)
			first = false
			round.Reset(m.cfg.Renew)
		case <-m.wake:
			m.expire()
			m.releaseDue(ctx)
		}
	}
}

// watch signals Changes as soon as a lease passes its local deadline (Leases
// already hides it); the Run loop removes it at its next step.
func (m *Manager) watch(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := m.cfg.Now()
		visible := false
		m.mu.Lock()
		for _, l := range m.leases {
			if !l.gone && !l.deadline.After(now) {
				l.gone = true
				visible = visible || !l.releasing
			}
		}
		m.mu.Unlock()
		if visible {
			m.publish()
		}
		// Wake at least every guard: a lease taken meanwhile has a deadline
		// at least TTL-guard away.
		t.Reset(min(m.untilExpiry(), m.guard))
	}
}

func (m *Manager) round(ctx context.Context, shardsFn func(context.Context) ([]string, error), balance bool) {
	m.expire()
	m.renew(ctx)
	m.releaseDue(ctx)
	members, err := m.heartbeat(ctx)
	if err != nil || !balance {
		return
	}
	sctx, cancel := m.stepCtx(ctx)
	list, err := shardsFn(sctx)
	cancel()
	if err != nil {
		m.fail("shards", err)
		return
	}
	m.rebalance(ctx, members, list)
	m.expire()
}

// stepCtx bounds one Redis call by the earliest local lease deadline (and by
// TTL): a call still pending then cannot keep a lease alive, and Run must get
// back to dropping it.
func (m *Manager) stepCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.untilExpiry())
}

// untilExpiry is the time until the earliest local deadline of a lease not
// yet past it, at most TTL and at least 1ms.
func (m *Manager) untilExpiry() time.Duration {
	now := m.cfg.Now()
	d := m.cfg.TTL
	m.mu.Lock()
	for _, l := range m.leases {
		if !l.gone {
			d = min(d, l.deadline.Sub(now))
		}
	}
	m.mu.Unlock()
	return max(d, time.Millisecond)
}

// expire drops the leases past their local deadline.
func (m *Manager) expire() {
	now := m.cfg.Now()
	var lost []string
	visible := false
	m.mu.Lock()
	for sh, l := range m.leases {
		if l.gone || !l.deadline.After(now) {
			delete(m.leases, sh)
			lost = append(lost, sh)
			visible = visible || !l.releasing
		}
	}
	m.mu.Unlock()
	if len(lost) == 0 {
		return
	}
	m.met.lost.WithLabelValues(lostExpired).Add(float64(len(lost)))
	m.log.Warn("leases not renewed within TTL, dropped", "shards", lost)
	if visible {
		m.publish()
	}
}

// renew extends every lease held, including those being given up.
func (m *Manager) renew(ctx context.Context) {
	var shards []string
	var fences []int64
	m.mu.Lock()
	for sh, l := range m.leases {
		shards = append(shards, sh)
		fences = append(fences, l.fence)
	}
	m.mu.Unlock()
	if len(shards) == 0 {
		return
	}
	sctx, cancel := m.stepCtx(ctx)
	defer cancel()
	sent := m.cfg.Now()
	ok, err := m.st.renew(sctx, shards, fences)
	if err != nil {
		m.fail("renew", err)
		m.expire()
		return
	}
	var lost []string
	visible := false
	m.mu.Lock()
	for i, sh := range shards {
		l := m.leases[sh]
		switch {
		case l == nil || l.fence != fences[i]:
		case l.gone:
			// Past its deadline while the renew was pending: its worker may
			// have stopped already. expire drops it; acquire may take it
			// again with a new fence.
		case ok[i]:
			l.deadline = sent.Add(m.cfg.TTL - m.guard)
		default:
			delete(m.leases, sh)
			lost = append(lost, sh)
			visible = visible || !l.releasing
		}
	}
	m.mu.Unlock()
	m.expire()
	if len(lost) == 0 {
		return
	}
	m.met.lost.WithLabelValues(lostTaken).Add(float64(len(lost)))
	m.log.Warn("leases taken by another owner, dropped", "shards", lost)
	if visible {
		m.publish()
	}
}

// releaseDue deletes the leases being given up whose worker stopped (Done)
// or that waited ReleaseTimeout for it.
func (m *Manager) releaseDue(ctx context.Context) {
	now := m.cfg.Now()
	var shards, forced []string
	var fences []int64
	m.mu.Lock()
	for sh, l := range m.leases {
		if !l.releasing {
			continue
		}
		timedOut := now.Sub(l.since) >= m.cfg.ReleaseTimeout
		if l.done || timedOut {
			shards = append(shards, sh)
			fences = append(fences, l.fence)
			if !l.done {
				forced = append(forced, sh)
			}
		}
	}
	m.mu.Unlock()
	if len(shards) == 0 {
		return
	}
	sctx, cancel := m.stepCtx(ctx)
	defer cancel()
	if err := m.st.release(sctx, shards, fences); err != nil {
		m.fail("release", err)
		return
	}
	m.mu.Lock()
	for i, sh := range shards {
		if l := m.leases[sh]; l != nil && l.releasing && l.fence == fences[i] {
			delete(m.leases, sh)
		}
	}
	m.mu.Unlock()
	m.met.released.Add(float64(len(shards)))
	m.log.Info("leases released", "shards", shards)
	if len(forced) > 0 {
		m.log.Warn("leases released without Done after the release timeout; fencing guards their workers", "shards", forced, "timeout", m.cfg.ReleaseTimeout)
	}
}

func (m *Manager) heartbeat(ctx context.Context) ([]string, error) {
	sctx, cancel := m.stepCtx(ctx)
	defer cancel()
	members, err := m.st.heartbeat(sctx)
	if err != nil {
		m.fail("heartbeat", err)
		return nil, err
	}
	m.met.members.Set(float64(len(members)))
	return members, nil
}

// rebalance gives up the leases above this member's share and takes free
// ones up to it.
func (m *Manager) rebalance(ctx context.Context, members, shards []string) {
	own := map[string]bool{}
	releasing := map[string]bool{}
	m.mu.Lock()
	for sh, l := range m.leases {
		if l.releasing {
			releasing[sh] = true
		} else {
			own[sh] = true
		}
	}
	m.mu.Unlock()
	p := makePlan(m.cfg.Owner, members, shards, own, releasing, m.cfg.Sticky)

	if len(p.release) > 0 {
		now := m.cfg.Now()
		m.mu.Lock()
		for _, sh := range p.release {
			if l := m.leases[sh]; l != nil {
				l.releasing, l.since = true, now
			}
		}
		m.mu.Unlock()
		m.log.Info("giving up leases", "shards", p.release, "quota", p.quota, "members", len(members))
		m.publish()
	}
	if p.want == 0 || len(p.candidates) == 0 {
		return
	}
	sctx, cancel := m.stepCtx(ctx)
	defer cancel()
	sent := m.cfg.Now()
	got, err := m.st.acquire(sctx, p.candidates, p.want)
	if err != nil {
		m.fail("acquire", err)
		return
	}
	if len(got) == 0 {
		return
	}
	m.mu.Lock()
	for sh, f := range got {
		m.leases[sh] = &held{fence: f, deadline: sent.Add(m.cfg.TTL - m.guard)}
	}
	m.mu.Unlock()
	m.met.acquired.Add(float64(len(got)))
	m.log.Info("leases acquired", "leases", got, "quota", p.quota, "members", len(members))
	m.publish()
}

// stop hides every lease when Run returns and keeps them for Leave.
func (m *Manager) stop() {
	m.mu.Lock()
	m.retired = make(map[string]int64, len(m.leases))
	for sh, l := range m.leases {
		m.retired[sh] = l.fence
	}
	m.leases = map[string]*held{}
	m.mu.Unlock()
	m.publish()
}

func (m *Manager) publish() {
	m.met.owned.Set(float64(len(m.Leases())))
	m.signal()
}

func (m *Manager) fail(op string, err error) {
	m.met.errors.WithLabelValues(op).Inc()
	m.log.Warn("lease "+op+" failed", "err", err)
}
