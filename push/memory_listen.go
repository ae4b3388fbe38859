package push

import (
	"context"
	"sync"
)

// maxMemNotices bounds the entries a memory listener holds for a hub that
// does not take them; past it entries are dropped, as a full pub/sub
// buffer drops them, and the hub reads them from the log.
const maxMemNotices = 4096

// memListener is a Listener of a MemorySource. Publish queues notices
// without blocking; one goroutine, stopped by Close, hands them on in
// order.
type memListener struct {
	src *MemorySource

	mu     sync.Mutex
	queue  []Notice
	deltas int // entries in queue
	keys   map[feedKey]struct{}

	wake      chan struct{} // cap 1: queue has something
	out       chan Notice
	closeOnce sync.Once
	done      chan struct{}
	exited    chan struct{}
}

// Listen implements Source.
func (m *MemorySource) Listen(context.Context) (Listener, error) {
	l := &memListener{src: m, keys: map[feedKey]struct{}{}, wake: make(chan struct{}, 1),
		out: make(chan Notice), done: make(chan struct{}), exited: make(chan struct{})}
	go l.run()
	return l, nil
}

// deliver queues n; a confirmation is never dropped, since the hub waits
// for it.
func (l *memListener) deliver(n Notice) {
	l.mu.Lock()
	if !n.Joined {
		if l.deltas >= maxMemNotices {
			l.mu.Unlock()
			return
		}
		l.deltas++
	}
	l.queue = append(l.queue, n)
	l.mu.Unlock()
	signal(l.wake)
}

func (l *memListener) run() {
	defer close(l.exited)
	defer close(l.out)
	for {
		select {
		case <-l.wake:
		case <-l.done:
			return
		}
		l.mu.Lock()
		batch := l.queue
		l.queue, l.deltas = nil, 0
		l.mu.Unlock()
		for _, n := range batch {
			select {
			case l.out <- n:
			case <-l.done:
				return
			}
		}
	}
}

// Subscribe implements Listener: the confirmation is queued under the
// source's lock, so it precedes every entry published after it.
func (l *memListener) Subscribe(_ context.Context, site, metricName string) error {
	k := feedKey{site, metricName}
	m := l.src
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.listeners[k]
	if set == nil {
		set = map[*memListener]struct{}{}
		m.listeners[k] = set
	}
	set[l] = struct{}{}
	l.mu.Lock()
	l.keys[k] = struct{}{}
	l.mu.Unlock()
	l.deliver(Notice{Site: site, Metric: metricName, Joined: true})
	return nil
}

// Unsubscribe implements Listener.
func (l *memListener) Unsubscribe(_ context.Context, site, metricName string) error {
	l.src.mu.Lock()
	defer l.src.mu.Unlock()
	l.unsubscribe(feedKey{site, metricName})
	return nil
}

// unsubscribe is called under the source's lock.
func (l *memListener) unsubscribe(k feedKey) {
	m := l.src
	delete(m.listeners[k], l)
	if len(m.listeners[k]) == 0 {
		delete(m.listeners, k)
	}
	l.mu.Lock()
	delete(l.keys, k)
	l.mu.Unlock()
}

// Notices implements Listener.
func (l *memListener) Notices() <-chan Notice { return l.out }

// Close implements Listener; it may be called more than once.
func (l *memListener) Close() error {
	l.closeOnce.Do(func() {
		l.src.mu.Lock()
		l.mu.Lock()
		keys := make([]feedKey, 0, len(l.keys))
		for k := range l.keys {
			keys = append(keys, k)
		}
		l.mu.Unlock()
		for _, k := range keys {
			l.unsubscribe(k)
		}
		l.src.mu.Unlock()
		close(l.done)
		<-l.exited
	})
	return nil
}
