package redisagg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/push"
)

// SourceStore is what a Source reads through: a *Store, or a runtime that
// forwards to the store of the namespace currently served.
type SourceStore interface {
	Snapshot(ctx context.Context, q SeriesQuery) (int64, Result, error)
	DeltaLogKey(site, metric string) string
	DeltaChannel(site, metric string) string
}

// Source is the push hub's push.Source over Redis: snapshots from the
// store, SUBSCRIBE for live entries, XRANGE and XREVRANGE for history.
// Every entry is decoded once, into push.Delta. It is safe for concurrent
// use.
type Source struct {
	rdb   redis.UniversalClient
	store SourceStore
}

var _ push.Source = (*Source)(nil)

// A subscription's window may hold push.MaxSnapshotBuckets buckets, so the
// store must read at least that many (a negative constant fails to build).
const _ = uint(MaxBuckets - push.MaxSnapshotBuckets)

// NewSource returns a Source reading store's snapshots and the delta logs
// and channels it names.
func NewSource(rdb redis.UniversalClient, store SourceStore) *Source {
	return &Source{rdb: rdb, store: store}
}

// Snapshot implements push.Source.
func (s *Source) Snapshot(ctx context.Context, q push.SnapshotQuery) (int64, []push.Series, error) {
	n, r, err := s.store.Snapshot(ctx, SeriesQuery(q))
	if errors.Is(err, ErrQuery) {
		return 0, nil, badQuery{err}
	}
	if err != nil {
		return 0, nil, err
	}
	out := make([]push.Series, len(r.Series))
	for i, sr := range r.Series {
		out[i] = push.Series{Labels: sr.Labels, Points: sr.Points}
	}
	return n, out, nil
}

// badQuery keeps the store's message and lets the hub tell a query it must
// refuse from a failure.
type badQuery struct{ err error }

func (e badQuery) Error() string        { return e.err.Error() }
func (e badQuery) Unwrap() error        { return e.err }
func (e badQuery) Is(target error) bool { return target == push.ErrBadQuery }

// Range implements push.Source.
func (s *Source) Range(ctx context.Context, site, metric string, from, count int64) ([]push.Delta, error) {
	key := s.store.DeltaLogKey(site, metric)
	msgs, err := s.rdb.XRangeN(ctx, key, strconv.FormatInt(from, 10)+"-0", "+", count).Result()
	if err != nil {
		return nil, fmt.Errorf("xrange %s from %d: %w", key, from, err)
	}
	out := make([]push.Delta, 0, len(msgs))
	for _, m := range msgs {
		n, err := entryN(m.ID)
		if err != nil {
			return nil, fmt.Errorf("xrange %s: %w", key, err)
		}
		data, _ := m.Values["d"].(string)
		d, err := DecodeDelta([]byte(data))
		if err != nil {
			return nil, fmt.Errorf("xrange %s entry %s: %w", key, m.ID, err)
		}
		d.N = n // the id is the log's own count
		out = append(out, d)
	}
	return out, nil
}

// Last implements push.Source.
func (s *Source) Last(ctx context.Context, site, metric string) (int64, error) {
	key := s.store.DeltaLogKey(site, metric)
	msgs, err := s.rdb.XRevRangeN(ctx, key, "+", "-", 1).Result()
	if err != nil {
		return 0, fmt.Errorf("xrevrange %s: %w", key, err)
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	n, err := entryN(msgs[0].ID)
	if err != nil {
		return 0, fmt.Errorf("xrevrange %s: %w", key, err)
	}
	return n, nil
}

func entryN(id string) (int64, error) {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("delta log id %q is not n-0", id)
	}
	return n, nil
}

// Listen implements push.Source: one pub/sub connection carries every
// channel the hub subscribes to.
func (s *Source) Listen(ctx context.Context) (push.Listener, error) {
	ps := s.rdb.Subscribe(ctx)
	l := &listener{src: s, ps: ps, names: map[string][2]string{}, out: make(chan push.Notice, 1024), done: make(chan struct{}), exited: make(chan struct{})}
	// The channel size lets a burst wait while the hub flushes; if go-redis
	// still has to drop a message, the hub sees the jump in n and catches up.
	in := ps.ChannelWithSubscriptions(redis.WithChannelSize(4096))
	go l.run(in)
	return l, nil
}

type listener struct {
	src *Source
	ps  *redis.PubSub
	out chan push.Notice

	mu    sync.Mutex
	names map[string][2]string // channel -> site, metric

	closeOnce sync.Once
	done      chan struct{}
	exited    chan struct{}
}

func (l *listener) lookup(ch string) ([2]string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k, ok := l.names[ch]
	return k, ok
}

func (l *listener) run(in <-chan any) {
	defer close(l.exited)
	defer close(l.out)
	for {
		var m any
		var ok bool
		select {
		case m, ok = <-in:
			if !ok {
				return
			}
		case <-l.done:
			return
		}
		n, ok := l.notice(m)
		if !ok {
			continue
		}
		select {
		case l.out <- n:
		case <-l.done:
			return
		}
	}
}

// notice turns a pub/sub message into a Notice. A message that does not
// decode is dropped: the hub sees the hole at the next entry, or at its
// periodic check, and reads the entry from the log, where it fails with
// push.ErrBadDelta and is logged.
func (l *listener) notice(m any) (push.Notice, bool) {
	switch m := m.(type) {
	case *redis.Subscription:
		if m.Kind != "subscribe" {
			return push.Notice{}, false
		}
		k, known := l.lookup(m.Channel)
		return push.Notice{Site: k[0], Metric: k[1], Joined: true}, known
	case *redis.Message:
		k, known := l.lookup(m.Channel)
		if !known {
			return push.Notice{}, false
		}
		d, err := DecodeDelta([]byte(m.Payload))
		if err != nil {
			return push.Notice{}, false
		}
		return push.Notice{Site: k[0], Metric: k[1], Delta: d}, true
	}
	return push.Notice{}, false
}

func (l *listener) Subscribe(ctx context.Context, site, metric string) error {
	ch := l.src.store.DeltaChannel(site, metric)
	l.mu.Lock()
	l.names[ch] = [2]string{site, metric}
	l.mu.Unlock()
	if err := l.ps.Subscribe(ctx, ch); err != nil {
		return fmt.Errorf("subscribe %s: %w", ch, err)
	}
	return nil
}

func (l *listener) Unsubscribe(ctx context.Context, site, metric string) error {
	ch := l.src.store.DeltaChannel(site, metric)
	l.mu.Lock()
	delete(l.names, ch)
	l.mu.Unlock()
	if err := l.ps.Unsubscribe(ctx, ch); err != nil {
		return fmt.Errorf("unsubscribe %s: %w", ch, err)
	}
	return nil
}

func (l *listener) Notices() <-chan push.Notice { return l.out }

func (l *listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.ps.Close()
		if errors.Is(err, redis.ErrClosed) {
			err = nil
		}
		<-l.exited
	})
	return err
}
