package push

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulsehq/pulse/metric"
)

// Hub is one push node: it listens to the delta logs of the keys its
// clients watch and serves GET /v1/ws. Run must be running for ServeHTTP to
// accept connections. Safe for concurrent use.
type Hub struct {
	src Source
	cfg Config
	m   *metrics

	unauth *unauthSlots // connections waiting for their auth message

	reqs chan func(Listener) // run by the loop goroutine
	done chan struct{}       // closed when the loop has ended

	mu      sync.Mutex
	started bool
	running bool
	conns   map[*conn]struct{}
	connWG  sync.WaitGroup

	scratch sync.Pool // *[]byte: the writers' space to build a batch of frames

	catalog atomic.Pointer[metric.Catalog] // cfg.Catalog, replaced by Switch

	// Owned by the loop goroutine.
	feeds  map[feedKey]*feed
	ntopic int
}

// ErrStopped is returned to calls made after the hub's Run has ended.
var ErrStopped = errors.New("push: hub stopped")

// New returns a Hub reading snapshots and deltas from src.
func New(src Source, cfg Config) *Hub {
	cfg = cfg.withDefaults()
	h := &Hub{
		src: src, cfg: cfg, m: newMetrics(cfg.Registerer),
		reqs: make(chan func(Listener)), done: make(chan struct{}),
		conns: map[*conn]struct{}{}, feeds: map[feedKey]*feed{},
		unauth: newUnauthSlots(cfg.MaxUnauthPerAddr, cfg.MaxUnauth),
	}
	h.scratch.New = func() any { return new([]byte) }
	h.catalog.Store(cfg.Catalog)
	return h
}

// Run listens for deltas and fans them out until ctx ends; then it closes
// every connection with 1001 and waits for their goroutines.
func (h *Hub) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.started {
		h.mu.Unlock()
		return errors.New("push: Run called twice")
	}
	h.started = true
	h.mu.Unlock()

	lis, err := h.src.Listen(ctx)
	if err != nil {
		close(h.done)
		return err
	}
	var liveDone chan struct{}
	if h.cfg.Live != nil {
		liveDone = make(chan struct{})
		go func() {
			defer close(liveDone)
			if err := h.cfg.Live.Run(ctx); err != nil {
				h.cfg.Logger.Error("push: live queries", "err", err)
			}
		}()
	}
	h.mu.Lock()
	h.running = true
	h.mu.Unlock()

	h.loop(ctx, lis)
	close(h.done)

	h.mu.Lock()
	h.running = false
	for c := range h.conns {
		c.shutdown()
	}
	h.mu.Unlock()
	h.connWG.Wait()
	if liveDone != nil {
		<-liveDone
	}
	if err := lis.Close(); err != nil {
		h.cfg.Logger.Warn("push: close listener", "err", err)
	}
	return nil
}

func (h *Hub) loop(ctx context.Context, lis Listener) {
	flush := time.NewTicker(h.cfg.FlushEvery)
	defer flush.Stop()
	check := time.NewTicker(h.cfg.CheckEvery)
	defer check.Stop()
	notices := lis.Notices()
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-h.reqs:
			f(lis)
		case n, ok := <-notices:
			if !ok {
				h.cfg.Logger.Error("push: delta listener closed")
				notices = nil
				continue
			}
			h.notice(ctx, n)
		case <-flush.C:
			for _, f := range h.feeds {
				for _, t := range f.topics {
					h.flushTopic(t)
				}
			}
		case <-check.C:
			h.check(ctx)
		}
	}
}

// do runs f on the loop goroutine and waits for it.
func (h *Hub) do(ctx context.Context, f func(Listener)) error {
	fin := make(chan struct{})
	select {
	case h.reqs <- func(l Listener) { f(l); close(fin) }:
	case <-h.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	<-fin
	return nil
}

func (h *Hub) redisCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, redisTimeout)
}
