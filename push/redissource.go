package push

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// DeltaKeys names the delta log stream and pub/sub channel of a site's
// metric; *redisagg.Store implements it.
type DeltaKeys interface {
	DeltaLogKey(site, metric string) string
	DeltaChannel(site, metric string) string
}

// RedisSource is a DeltaSource over go-redis: SUBSCRIBE for live entries,
// XRANGE and XREVRANGE for history. It is safe for concurrent use.
type RedisSource struct {
	rdb  redis.UniversalClient
	keys DeltaKeys
}

var _ DeltaSource = (*RedisSource)(nil)

// NewRedisSource returns a RedisSource reading the keys that keys names.
func NewRedisSource(rdb redis.UniversalClient, keys DeltaKeys) *RedisSource {
	return &RedisSource{rdb: rdb, keys: keys}
}

// Range implements DeltaSource.
func (s *RedisSource) Range(ctx context.Context, site, metric string, from, count int64) ([]LogEntry, error) {
	key := s.keys.DeltaLogKey(site, metric)
	msgs, err := s.rdb.XRangeN(ctx, key, strconv.FormatInt(from, 10)+"-0", "+", count).Result()
	if err != nil {
		return nil, fmt.Errorf("xrange %s from %d: %w", key, from, err)
	}
	out := make([]LogEntry, 0, len(msgs))
	for _, m := range msgs {
		n, err := entryN(m.ID)
		if err != nil {
			return nil, fmt.Errorf("xrange %s: %w", key, err)
		}
		d, _ := m.Values["d"].(string)
		out = append(out, LogEntry{N: n, Data: []byte(d)})
	}
	return out, nil
}

// Last implements DeltaSource.
func (s *RedisSource) Last(ctx context.Context, site, metric string) (int64, error) {
	key := s.keys.DeltaLogKey(site, metric)
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

// Listen implements DeltaSource: one pub/sub connection carries every
// channel the hub subscribes to.
func (s *RedisSource) Listen(ctx context.Context) (Listener, error) {
	ps := s.rdb.Subscribe(ctx)
	l := &redisListener{src: s, ps: ps, names: map[string][2]string{}, out: make(chan Notice, 1024), done: make(chan struct{}), exited: make(chan struct{})}
	// The channel size lets a burst wait while the hub flushes; if go-redis
	// still has to drop a message, the hub sees the jump in n and catches up.
	in := ps.ChannelWithSubscriptions(redis.WithChannelSize(4096))
	go l.run(in)
	return l, nil
}

type redisListener struct {
	src *RedisSource
	ps  *redis.PubSub
	out chan Notice

	mu    sync.Mutex
	names map[string][2]string // channel -> site, metric

	closeOnce sync.Once
	done      chan struct{}
	exited    chan struct{}
}

func (l *redisListener) lookup(ch string) ([2]string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k, ok := l.names[ch]
	return k, ok
}

func (l *redisListener) run(in <-chan any) {
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
		var n Notice
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			k, known := l.lookup(m.Channel)
			if !known {
				continue
			}
			n = Notice{Site: k[0], Metric: k[1], Joined: true}
		case *redis.Message:
			k, known := l.lookup(m.Channel)
			if !known {
				continue
			}
			n = Notice{Site: k[0], Metric: k[1], Data: []byte(m.Payload)}
		default:
			continue
		}
		select {
		case l.out <- n:
		case <-l.done:
			return
		}
	}
}

func (l *redisListener) Subscribe(ctx context.Context, site, metric string) error {
	ch := l.src.keys.DeltaChannel(site, metric)
	l.mu.Lock()
	l.names[ch] = [2]string{site, metric}
	l.mu.Unlock()
	if err := l.ps.Subscribe(ctx, ch); err != nil {
		return fmt.Errorf("subscribe %s: %w", ch, err)
	}
	return nil
}

func (l *redisListener) Unsubscribe(ctx context.Context, site, metric string) error {
	ch := l.src.keys.DeltaChannel(site, metric)
	l.mu.Lock()
	delete(l.names, ch)
	l.mu.Unlock()
	if err := l.ps.Unsubscribe(ctx, ch); err != nil {
		return fmt.Errorf("unsubscribe %s: %w", ch, err)
	}
	return nil
}

func (l *redisListener) Notices() <-chan Notice { return l.out }

func (l *redisListener) Close() error {
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
