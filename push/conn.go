package push

import (
	"context"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Close codes of the protocol beyond RFC 6455's.
const (
	StatusIdleTimeout  websocket.StatusCode = 4000
	StatusSlowConsumer websocket.StatusCode = 4008
)

// conn is one WebSocket client: a reader, a writer, a pinger and a session
// goroutine that handles client messages and resets.
type conn struct {
	h      *Hub
	ws     *websocket.Conn
	q      *queue
	in     chan []byte
	idle   chan struct{}
	stop   chan struct{}
	stopMu sync.Once
	authed bool

	subs map[string]*sub // owned by the session goroutine
}

// sub is one subscription of one connection.
type sub struct {
	c      *conn
	id     string
	prefix []byte
	key    topicKey
	req    ClientMessage

	closed atomic.Bool // unsubscribed or replaced: its queued frames are skipped

	resetPending bool // under c.q.mu

	// Owned by the hub loop.
	after         int64 // seq of the last entry queued for it
	early         []entryPoints
	earlyOverflow bool
}

// ServeHTTP serves GET /v1/ws.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "use GET to open a WebSocket", http.StatusMethodNotAllowed)
		return
	}
	if !h.originAllowed(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	authed := h.cfg.Tokens == nil
	if tok := r.URL.Query().Get("token"); tok != "" && h.cfg.Tokens != nil {
		if !h.cfg.Tokens.Read(tok) {
			http.Error(w, "invalid read token", http.StatusUnauthorized)
			return
		}
		authed = true
	}
	h.mu.Lock()
	if !h.running {
		h.mu.Unlock()
		http.Error(w, "push hub not running", http.StatusServiceUnavailable)
		return
	}
	h.connWG.Add(1)
	h.mu.Unlock()
	defer h.connWG.Done()

	c := &conn{h: h, q: newQueue(h.cfg.SendQueue), in: make(chan []byte), idle: make(chan struct{}, 1),
		stop: make(chan struct{}), authed: authed, subs: map[string]*sub{}}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept answered the request
	}
	ws.SetReadLimit(h.cfg.MaxMessageBytes)
	c.ws = ws

	h.mu.Lock()
	if !h.running {
		h.mu.Unlock()
		_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	h.m.connections.Inc()
	defer func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
		h.m.connections.Dec()
	}()
	c.run(r.Context())
}

// originAllowed applies Config.AllowedOrigins before the upgrade.
func (h *Hub) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, p := range h.cfg.AllowedOrigins {
		if p == "*" {
			return true
		}
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}

// shutdown asks the session to close with 1001.
func (c *conn) shutdown() { c.stopMu.Do(func() { close(c.stop) }) }

func (c *conn) run(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); c.read(ctx, cancel) }()
	go func() { defer wg.Done(); c.write(ctx, cancel) }()
	go func() { defer wg.Done(); c.ping(ctx) }()
	c.session(ctx)
	cancel()
	_ = c.ws.CloseNow()
	wg.Wait()
	dctx, dcancel := context.WithTimeout(context.Background(), redisTimeout)
	defer dcancel()
	for _, s := range c.subs {
		s.closed.Store(true)
		c.h.detach(dctx, s)
		c.h.m.subscriptions.Dec()
	}
}

func (c *conn) read(ctx context.Context, cancel context.CancelFunc) {
	defer cancel()
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		select {
		case c.in <- b:
		case <-ctx.Done():
			return
		}
	}
}

// write sends what the queue holds; it is the only goroutine writing data.
func (c *conn) write(ctx context.Context, cancel context.CancelFunc) {
	defer cancel()
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.q.wake:
		}
		for {
			frames, merged := c.q.take()
			if len(frames) == 0 && len(merged) == 0 {
				break
			}
			for _, f := range frames {
				if f.sub != nil && f.sub.closed.Load() {
					continue
				}
				if err := c.writeMsg(ctx, &buf, f.prefix, f.body); err != nil {
					return
				}
				if f.delta {
					c.h.m.deltasSent.Inc()
				}
			}
			for _, m := range merged {
				if m.sub.closed.Load() {
					continue
				}
				if err := c.writeMsg(ctx, &buf, m.sub.prefix, encodeBody(m.from, m.seq, m.points)); err != nil {
					return
				}
				c.h.m.deltasSent.Inc()
			}
		}
		signal(c.q.drained)
	}
}

// writeMsg writes prefix+body as one frame; buf is the writer's scratch
// space, so splicing a shared body costs no allocation.
func (c *conn) writeMsg(ctx context.Context, buf *[]byte, prefix, body []byte) error {
	if prefix == nil {
		return c.ws.Write(ctx, websocket.MessageText, body)
	}
	*buf = append(append((*buf)[:0], prefix...), body...)
	return c.ws.Write(ctx, websocket.MessageText, *buf)
}

func (c *conn) ping(ctx context.Context) {
	t := time.NewTicker(c.h.cfg.PingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, c.h.cfg.IdleTimeout)
		err := c.ws.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				signal(c.idle)
			}
			return
		}
	}
}
