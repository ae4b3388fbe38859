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
	"golang.org/x/time/rate"
)

// Close codes of the protocol beyond RFC 6455's.
const (
	StatusIdleTimeout  websocket.StatusCode = 4000
	StatusSlowConsumer websocket.StatusCode = 4008
)

// conn is one WebSocket client. One goroutine lives as long as it does:
// the reader, which reads and handles client messages. The writer runs
// while the queue holds something; pings, reset snapshots and closes run on
// short-lived goroutines; the ping, auth and stall clocks are timers. An
// idle connection pays for one stack.
type conn struct {
	h      *Hub
	ws     *websocket.Conn
	io     *wsConn // under ws: the writer writes data frames here
	q      *queue
	ctx    context.Context // ends with the connection
	cancel context.CancelFunc
	stopMu sync.Once
	authed atomic.Bool

	writing   atomic.Bool // a writer runs (or the connection failed)
	resetting atomic.Bool

	lifeMu sync.Mutex
	ended  bool           // under lifeMu: no goroutine may start any more
	wg     sync.WaitGroup // the short-lived goroutines
	pingT  *time.Timer    // under lifeMu
	authT  *time.Timer    // under lifeMu

	// dropUnauth frees the connection's slot among those waiting for their
	// auth message (Config.MaxUnauthPerAddr); safe to call more than once.
	dropUnauth func()

	stallMu  sync.Mutex
	stallT   *time.Timer // under stallMu: armed while the queue is stalled
	stallOff bool        // under stallMu: the connection ended, arm no more

	// sessMu serialises the handling of client messages and resets.
	sessMu sync.Mutex
	subs   map[string]*sub // under sessMu; nil until the first subscribe
	token  string          // under sessMu: the read token the connection authenticated with

	msgs *rate.Limiter // client messages; only the reader uses it; nil: no limit
}

// sub is one subscription of one connection.
type sub struct {
	c      *conn
	id     string
	prefix []byte
	key    topicKey
	req    ClientMessage

	closed atomic.Bool // unsubscribed or replaced: its queued frames are skipped

	// stopLive ends a live query's subscription (LiveQueries.Subscribe);
	// nil for the site/metric form.
	stopLive func()

	resetPending bool // under c.q.mu

	// Owned by the hub loop.
	after         int64 // seq of the last entry queued for it
	early         []entryPoints
	earlyOverflow bool
}

// ServeHTTP serves GET /v1/ws.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok, authed, release, dropUnauth, ok := h.admit(w, r)
	if !ok {
		return
	}
	h.mu.Lock()
	if !h.running {
		h.mu.Unlock()
		release()
		http.Error(w, "push hub not running", http.StatusServiceUnavailable)
		return
	}
	h.connWG.Add(1)
	h.mu.Unlock()

	c := &conn{h: h, q: newQueue(h.cfg.SendQueue), token: tok, msgs: h.cfg.newMessageLimiter(), dropUnauth: dropUnauth}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.q.onWake, c.q.onReset, c.q.onStall = c.wake, c.startResets, c.armStall
	c.authed.Store(authed)
	// Compression stays off (the default, named here because it matters):
	// permessage-deflate would hold flate state per connection.
	sw := &smallBufWriter{ResponseWriter: w}
	ws, err := websocket.Accept(sw, r, &websocket.AcceptOptions{InsecureSkipVerify: true,
		CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		c.cancel()
		release()
		h.connWG.Done()
		return // Accept answered the request
	}
	if authed {
		ws.SetReadLimit(h.cfg.MaxAuthedMessageBytes)
	} else {
		ws.SetReadLimit(h.cfg.MaxMessageBytes)
	}
	c.ws, c.io = ws, sw.conn

	h.mu.Lock()
	if !h.running {
		h.mu.Unlock()
		_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
		c.cancel()
		release()
		h.connWG.Done()
		return
	}
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	h.m.connections.Inc()
	// The handler returns at once: net/http's per-request state (the
	// request, its headers, the conn and its buffers, a grown stack) is
	// then garbage, and the connection lives on its reader and writer.
	go func() {
		defer h.connWG.Done()
		defer release()
		defer func() {
			h.mu.Lock()
			delete(h.conns, c)
			h.mu.Unlock()
			h.m.connections.Dec()
		}()
		c.run()
	}()
}

// admit runs the checks that can refuse a request before the upgrade: the
// method, the origin, the read token of the upgrade (upgradeToken), the caps on connections
// without a token (Config.MaxUnauthPerAddr, MaxUnauth) and the per-address
// cap (Config.Admit). When one refuses, it answers the request and ok is
// false. Otherwise it returns the token, whether the connection is
// authenticated already (a valid token, or no tokens configured; else a
// later message may authenticate it), the release of the admission, to
// call when the connection ends, and dropUnauth, which frees the
// unauthenticated slot alone once the auth message has come.
func (h *Hub) admit(w http.ResponseWriter, r *http.Request) (tok string, authed bool, release, dropUnauth func(), ok bool) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "use GET to open a WebSocket", http.StatusMethodNotAllowed)
		return "", false, nil, nil, false
	}
	if !h.originAllowed(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return "", false, nil, nil, false
	}
	authed = h.cfg.Tokens == nil
	tok = upgradeToken(r)
	if tok != "" && h.cfg.Tokens != nil {
		if !h.cfg.Tokens.Read(tok) {
			http.Error(w, "invalid read token", http.StatusUnauthorized)
			return "", false, nil, nil, false
		}
		authed = true
	}
	dropUnauth = func() {}
	if !authed {
		rel, refused := h.unauth.acquire(h.cfg.ClientAddr(r))
		if refused != "" {
			h.m.unauthRefused.WithLabelValues(refused).Inc()
			w.Header().Set("Retry-After", "2")
			http.Error(w, "too many WebSocket connections waiting for their auth message", http.StatusTooManyRequests)
			return "", false, nil, nil, false
		}
		dropUnauth = rel
	}
	release = dropUnauth
	if h.cfg.Admit != nil {
		rel, admitted := h.cfg.Admit(r)
		if !admitted {
			dropUnauth()
			w.Header().Set("Retry-After", "5")
			http.Error(w, "too many WebSocket connections from this address", http.StatusTooManyRequests)
			return "", false, nil, nil, false
		}
		release = func() { dropUnauth(); rel() }
	}
	return tok, authed, release, dropUnauth, true
}

// upgradeToken is the read token an upgrade request carries: an
// Authorization: Bearer header (scripts; it stays out of proxies' access
// logs), else the token query parameter; "" when neither.
func upgradeToken(r *http.Request) string {
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return r.URL.Query().Get("token")
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

// shutdown closes the connection with 1001.
func (c *conn) shutdown() {
	c.stopMu.Do(func() {
		c.async(func() { c.close(websocket.StatusGoingAway, "server shutting down") })
	})
}

// async runs f on a goroutine the connection owns (run waits for it),
// unless the connection has ended; it says whether f runs.
func (c *conn) async(f func()) bool {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.ended {
		return false
	}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); f() }()
	return true
}

// run reads client messages until the connection ends, then waits for
// the connection's other goroutines and detaches its subscriptions.
func (c *conn) run() {
	c.lifeMu.Lock()
	c.pingT = time.AfterFunc(c.h.cfg.PingEvery, c.ping)
	if !c.authed.Load() {
		c.authT = time.AfterFunc(c.h.cfg.AuthTimeout, func() {
			if !c.authed.Load() {
				// The slot is free at once: a client that does not
				// answer the close must not hold it through the
				// close handshake.
				c.dropUnauth()
				c.async(func() { c.close(websocket.StatusPolicyViolation, "no auth message") })
			}
		})
	}
	c.lifeMu.Unlock()

	c.read()
	c.cancel()
	_ = c.ws.CloseNow()
	c.stallMu.Lock()
	c.stallOff = true
	if c.stallT != nil {
		c.stallT.Stop()
	}
	c.stallMu.Unlock()
	c.lifeMu.Lock()
	c.ended = true
	c.pingT.Stop()
	if c.authT != nil {
		c.authT.Stop()
	}
	c.lifeMu.Unlock()
	c.wg.Wait()
	dctx, dcancel := context.WithTimeout(context.Background(), redisTimeout)
	defer dcancel()
	c.sessMu.Lock()
	defer c.sessMu.Unlock()
	for _, s := range c.subs {
		s.closed.Store(true)
		c.h.detach(dctx, s)
		c.h.m.subscriptions.Dec()
	}
}

// read handles client messages one at a time until the connection fails or
// a message ends it. Read gets no context that can end: one would hold a
// context.AfterFunc registration, and its allocations, for as long as Read
// blocks; every end of the connection closes the WebSocket instead.
func (c *conn) read() {
	ctx := c.ctx
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		if !c.allowMessage() {
			// A flood of messages is refused as a whole: answering each
			// with an error would only feed it.
			c.h.m.floodCloses.Inc()
			c.close(websocket.StatusPolicyViolation, "too many messages")
			return
		}
		// Handled on a goroutine of its own, and waited for: the reader's
		// stack stays the small one Read needs, instead of keeping, for
		// the connection's life, what a subscribe's store calls grew it to.
		ok := false
		done := make(chan struct{})
		if !c.async(func() {
			defer close(done)
			c.sessMu.Lock()
			defer c.sessMu.Unlock()
			ok = c.handle(ctx, b)
		}) {
			return
		}
		<-done
		if !ok {
			return
		}
	}
}

// wake starts the writer unless it runs.
func (c *conn) wake() {
	if !c.writing.CompareAndSwap(false, true) {
		return
	}
	// As async does, without the closure it allocates: a writer starts
	// for most delivered messages.
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.ended {
		return
	}
	c.wg.Add(1)
	go c.runWriter()
}

func (c *conn) runWriter() {
	defer c.wg.Done()
	c.write()
}

// write sends what the queue holds, then ends; it is the only goroutine
// writing data. Everything taken at once goes out in one write: a client
// that fell behind gets its queued messages in one system call. A write
// error ends the connection and leaves writing set, so no writer starts
// again.
func (c *conn) write() {
	bp := c.h.scratch.Get().(*[]byte)
	defer c.h.scratch.Put(bp)
	for {
		for {
			frames, merged := c.q.take()
			if len(frames) == 0 && len(merged) == 0 {
				break
			}
			ok := c.writeBatch(bp, frames, merged)
			c.q.recycle(frames)
			if !ok {
				c.fail()
				return
			}
		}
		signal(c.q.drained)
		if c.q.resetsWaiting() {
			c.startResets()
		}
		c.writing.Store(false)
		// A push that found writing set before the store is ours to send.
		if !c.q.pending() || !c.writing.CompareAndSwap(false, true) {
			return
		}
	}
}

// fail ends the connection after a write error.
func (c *conn) fail() {
	c.cancel()
	_ = c.ws.CloseNow()
}

// writeBatch writes frames then merged as text frames, in writes of about
// maxScratch bytes, through buf, the scratch space shared through the
// hub's pool; false when a write failed.
func (c *conn) writeBatch(buf *[]byte, frames []frame, merged []*pending) bool {
	b, deltas := (*buf)[:0], 0
	flush := func() bool {
		err := c.io.writeFrames(b)
		b = b[:0]
		if err != nil {
			return false
		}
		c.h.m.deltasSent.Add(float64(deltas))
		deltas = 0
		return true
	}
	for _, f := range frames {
		if f.sub != nil && f.sub.closed.Load() {
			continue
		}
		b = appendTextFrame(b, f.prefix, f.body)
		if f.delta {
			deltas++
		}
		if len(b) >= maxScratch && !flush() {
			return false
		}
	}
	for _, m := range merged {
		if m.sub.closed.Load() {
			continue
		}
		b = appendTextFrame(b, m.sub.prefix, encodeBody(m.from, m.seq, m.points))
		deltas++
		if len(b) >= maxScratch && !flush() {
			return false
		}
	}
	ok := len(b) == 0 || flush()
	if cap(b) > maxScratch {
		b = nil // a snapshot-sized buffer is not worth keeping
	}
	*buf = b
	return ok
}

// ping sends a ping, and closes the connection with 4000 when no pong comes
// within Config.IdleTimeout; the next ping follows Config.PingEvery after
// the pong. It waits on a goroutine of its own, which lives one round
// trip, so the writer keeps writing meanwhile, and a writer blocked on a
// full socket does not keep the connection from closing.
func (c *conn) ping() {
	c.async(func() {
		pctx, cancel := context.WithTimeout(c.ctx, c.h.cfg.IdleTimeout)
		err := c.ws.Ping(pctx)
		cancel()
		if err != nil {
			if c.ctx.Err() == nil {
				c.close(StatusIdleTimeout, "idle timeout")
			}
			return
		}
		c.lifeMu.Lock()
		if !c.ended {
			c.pingT.Reset(c.h.cfg.PingEvery)
		}
		c.lifeMu.Unlock()
	})
}

// armStall starts the stall clock when the queue becomes stalled.
func (c *conn) armStall() {
	c.stallMu.Lock()
	defer c.stallMu.Unlock()
	if c.stallT != nil || c.stallOff {
		return
	}
	c.stallT = time.AfterFunc(c.h.cfg.StallClose, c.checkStall)
}

// checkStall closes the connection with 4008 once it has stayed stalled for
// Config.StallClose; the close runs even while the writer is blocked on the
// client's full socket.
func (c *conn) checkStall() {
	c.stallMu.Lock()
	defer c.stallMu.Unlock()
	if c.stallOff {
		return
	}
	d := c.q.stalledFor(c.h.cfg.Now())
	switch {
	case d == 0: // the writer took the queue: disarmed until the next stall
		c.stallT = nil
	case d > c.h.cfg.StallClose:
		c.stallOff = true
		c.h.m.slowCloses.Inc()
		c.async(func() { c.close(StatusSlowConsumer, "slow consumer") })
	default:
		c.stallT.Reset(c.h.cfg.StallClose - d + time.Millisecond)
	}
}

// startResets re-subscribes, on a goroutine of its own, the subscriptions
// waiting for a reset snapshot once the writer has emptied the queue; it
// serialises with client messages through sessMu. Resets are rare, so no
// goroutine waits for them.
func (c *conn) startResets() {
	if !c.q.resetsWaiting() || !c.resetting.CompareAndSwap(false, true) {
		return
	}
	c.async(func() {
		for {
			c.sessMu.Lock()
			c.resets(c.ctx)
			c.sessMu.Unlock()
			c.resetting.Store(false)
			// A reset asked for after resets took the list is ours too.
			if c.ctx.Err() != nil || !c.q.resetsWaiting() || !c.resetting.CompareAndSwap(false, true) {
				return
			}
		}
	})
}
