package lease

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Manager holds this instance's shard leases. One Run at a time drives it;
// Leases, Changes and Done are safe for concurrent use from any goroutine.
type Manager struct {
	cfg   Config
	st    *store
	met   *metrics
	log   *slog.Logger
	guard time.Duration // trust a renew for TTL-guard only

	changes chan struct{} // capacity 1: "Leases changed"
	wake    chan struct{} // capacity 1: "a Done is pending"

	// mu guards leases and retired. Only the Run goroutine adds or removes
	// entries; Done only flags them.
	mu      sync.Mutex
	leases  map[string]*held
	retired map[string]int64 // held when Run returned, for Leave
}

// held is one lease this instance holds.
type held struct {
	fence     int64
	deadline  time.Time // local clock: trusted until then
	releasing bool      // given up: hidden from Leases, renewed until done
	since     time.Time // when releasing started
	done      bool      // the consumer's worker stopped (Done)
	gone      bool      // past deadline and reported; Run drops it
}

// New returns a Manager of shard leases kept in rdb. It fails on an invalid
// Config or when the metrics cannot be registered.
func New(rdb redis.UniversalClient, cfg Config) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	met, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Manager{
		cfg:     cfg,
		st:      newStore(rdb, cfg.Namespace, cfg.Owner, cfg.TTL),
		met:     met,
		log:     cfg.Logger.With("owner", cfg.Owner),
		guard:   cfg.TTL / 10,
		changes: make(chan struct{}, 1),
		wake:    make(chan struct{}, 1),
		leases:  map[string]*held{},
	}, nil
}

// Owner returns this instance's id.
func (m *Manager) Owner() string { return m.cfg.Owner }

// Leases returns the shards this instance owns, each with its fencing
// token. A shard being given up, lost, or not confirmed by a renew within
// its TTL is absent: its worker must stop. A shard whose fence changed was
// lost and taken again: its worker must restart with the new fence.
func (m *Manager) Leases() map[string]int64 {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int64, len(m.leases))
	for sh, l := range m.leases {
		if !l.releasing && l.deadline.After(now) {
			out[sh] = l.fence
		}
	}
	return out
}

// Changes is signalled (without blocking: a signal may stand for several
// changes) whenever Leases changes.
func (m *Manager) Changes() <-chan struct{} { return m.changes }

// Done tells the Manager that the worker of shard, started with fence, has
// stopped, so a lease being given up can be deleted for the next owner. It
// is ignored unless that lease is being given up with that fence.
func (m *Manager) Done(shard string, fence int64) {
	m.mu.Lock()
	l := m.leases[shard]
	ok := l != nil && l.releasing && l.fence == fence && !l.done
	if ok {
		l.done = true
	}
	m.mu.Unlock()
	if ok {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// Leave removes this instance from the group and deletes the leases it held
// when Run returned, so the others take them over at their next round
// instead of after TTL. Call it only after Run has returned and every
// worker has stopped.
func (m *Manager) Leave(ctx context.Context) error {
	m.mu.Lock()
	shards := make([]string, 0, len(m.retired))
	fences := make([]int64, 0, len(m.retired))
	for sh, f := range m.retired {
		shards = append(shards, sh)
		fences = append(fences, f)
	}
	m.mu.Unlock()
	if len(shards) > 0 {
		if err := m.st.release(ctx, shards, fences); err != nil {
			return err
		}
		m.mu.Lock()
		m.retired = nil
		m.mu.Unlock()
	}
	return m.st.leave(ctx)
}

func (m *Manager) signal() {
	select {
	case m.changes <- struct{}{}:
	default:
	}
}
