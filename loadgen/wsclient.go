package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// WSProtocol adapts the WebSocket load client to one server's protocol; the
// client (dialing, reading, timing, counting) is the same for every server.
type WSProtocol interface {
	// Open starts the protocol state of one new connection.
	Open() WSSession
}

// WSSession is the protocol state of one connection. It is used by one
// goroutine at a time.
type WSSession interface {
	// Start returns the messages to send right after the upgrade (connect,
	// subscribe), in order.
	Start() [][]byte
	// Handle decodes one received frame.
	Handle(frame []byte) (Frame, error)
}

// Frame is what one received WebSocket frame carried.
type Frame struct {
	Ready  bool   // the subscription is confirmed (Pulse's snapshot, Centrifugo's subscribe reply)
	Pushes int    // pushed messages in the frame (Centrifugo batches several per frame)
	Total  int64  // the watermark after the frame; meaningful when Ready or Pushes > 0
	Reply  []byte // a message to send back (Centrifugo's pong), or nil
}

// FleetConfig says how many subscribers to open and where.
type FleetConfig struct {
	URL      string // ws://127.0.0.1:PORT/...
	Clients  int
	Protocol WSProtocol
	// DialConcurrency bounds dials in flight, so the server's accept backlog
	// does not overflow; default 64.
	DialConcurrency int
	// ReadyTimeout bounds the whole connect-and-subscribe phase; default 60s.
	ReadyTimeout time.Duration
	// MaxReadings bounds the readings kept per client (the rest are only
	// counted); default 4096.
	MaxReadings int
	// PerSourceIP, when positive, spreads the connections over the loopback
	// source addresses 127.0.0.2, 127.0.0.3, ... so that at most this many
	// come from one address: servers cap WebSocket connections per client
	// IP, and many real dashboards come from many addresses. Only for a
	// loopback target; 0 dials from the default address.
	PerSourceIP int
}

// Fleet is a set of subscribers, each with one reading goroutine. DialFleet
// starts it and Close stops it. Its methods are safe for concurrent use.
type Fleet struct {
	clients []*wsClient
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	// recording gates which readings are kept, so the connect phase's
	// snapshots and a drain's stragglers are told apart from the measurement.
	recording atomic.Bool
	failed    atomic.Bool // a subscriber failed before it was ready: stop dialing
	closing   atomic.Bool // Close was called: errors are expected
}

type wsClient struct {
	conn     *websocket.Conn
	session  WSSession
	max      int
	mu       sync.Mutex // guards what follows, read after the reader stopped or by Stats
	readings []Reading
	pushes   int64
	bytes    int64
	high     int64 // the highest total seen, recording or not
	err      error
}

// DialFleet connects cfg.Clients subscribers and returns once every one has
// its subscription confirmed; on any failure it closes them all.
func DialFleet(ctx context.Context, cfg FleetConfig) (*Fleet, error) {
	cfg = cfg.withDefaults()
	runCtx, cancel := context.WithCancel(context.Background())
	f := &Fleet{clients: make([]*wsClient, cfg.Clients), cancel: cancel}
	readyCtx, readyCancel := context.WithTimeout(ctx, cfg.ReadyTimeout)
	defer readyCancel()

	// One transport for all: a transport per connection would be wasteful,
	// and hijacked upgrade connections never return to its pool.
	tr := dialTransport(cfg.PerSourceIP)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}

	// A client releases its dial slot once subscribed (or failed), so at
	// most DialConcurrency handshakes are in flight.
	ready := make(chan error, cfg.Clients)
	sem := make(chan struct{}, cfg.DialConcurrency)
	var failed error
	dialed := 0
	for i := range cfg.Clients {
		select {
		case sem <- struct{}{}:
		case <-readyCtx.Done():
		}
		if f.failed.Load() || readyCtx.Err() != nil {
			break
		}
		conn, _, err := websocket.Dial(readyCtx, cfg.URL, &websocket.DialOptions{HTTPClient: hc})
		if err != nil {
			failed = fmt.Errorf("dial subscriber %d of %d: %w", i+1, cfg.Clients, err)
			break
		}
		conn.SetReadLimit(4 << 20)
		c := &wsClient{conn: conn, session: cfg.Protocol.Open(), max: cfg.MaxReadings}
		f.clients[i] = c
		dialed++
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			c.run(runCtx, f, func(err error) {
				if err != nil {
					f.failed.Store(true)
				}
				<-sem
				ready <- err
			})
		}()
	}
	if failed == nil {
		failed = awaitReady(readyCtx, cfg, ready, dialed)
	}
	if failed != nil {
		f.Close()
		return nil, failed
	}
	return f, nil
}

// withDefaults fills the unset limits of cfg.
func (cfg FleetConfig) withDefaults() FleetConfig {
	if cfg.DialConcurrency <= 0 {
		cfg.DialConcurrency = 64
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 60 * time.Second
	}
	if cfg.MaxReadings <= 0 {
		cfg.MaxReadings = 4096
	}
	return cfg
}

// dialTransport returns the transport every subscriber dials through. With
// perSourceIP > 0 it spreads connections over loopback source addresses,
// perSourceIP per address (see FleetConfig.PerSourceIP).
func dialTransport(perSourceIP int) *http.Transport {
	var dials atomic.Int64
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		if perSourceIP > 0 {
			// The host part of 127.0.0.0/8, from 2 on (127.0.0.1 stays free).
			k := 2 + (dials.Add(1)-1)/int64(perSourceIP)
			if k >= 1<<24-1 {
				return nil, fmt.Errorf("dial %s: out of loopback source addresses", addr)
			}
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, byte(k>>16), byte(k>>8), byte(k))}
		}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Transport{DialContext: dialer, DisableCompression: true}
}

// awaitReady waits until the dialed subscribers have reported on ready, and
// returns the first failure, a timeout when readyCtx ends first, or an
// error when the dial loop stopped before all cfg.Clients were dialed.
func awaitReady(readyCtx context.Context, cfg FleetConfig, ready <-chan error, dialed int) error {
	for got := 0; got < dialed; got++ {
		select {
		case err := <-ready:
			if err != nil {
				return err
			}
		case <-readyCtx.Done():
			return fmt.Errorf("subscribers not ready after %s: %d of %d pending", cfg.ReadyTimeout, dialed-got, cfg.Clients)
		}
	}
	if dialed < cfg.Clients {
		return fmt.Errorf("connect %d subscribers: only %d dialed: %v", cfg.Clients, dialed, readyCtx.Err())
	}
	return nil
}

// run reads until the fleet closes. It calls done once: with nil at the
// first Ready frame, or with the error that ended the connection before.
func (c *wsClient) run(ctx context.Context, f *Fleet, done func(error)) {
	isReady := false
	fail := func(err error) {
		if f.closing.Load() {
			return
		}
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		if !isReady {
			isReady = true
			done(err)
		}
	}
	defer func() {
		if !isReady {
			done(errors.New("subscriber closed before its subscription was confirmed"))
		}
	}()
	for _, m := range c.session.Start() {
		if err := c.conn.Write(ctx, websocket.MessageText, m); err != nil {
			fail(fmt.Errorf("send handshake: %w", err))
			return
		}
	}
	for {
		_, b, err := c.conn.Read(ctx)
		at := time.Now()
		if err != nil {
			fail(fmt.Errorf("read: %w", err))
			return
		}
		fr, err := c.session.Handle(b)
		if err != nil {
			fail(err)
			return
		}
		if fr.Reply != nil {
			if err := c.conn.Write(ctx, websocket.MessageText, fr.Reply); err != nil {
				fail(fmt.Errorf("send reply: %w", err))
				return
			}
		}
		if fr.Ready && !isReady {
			isReady = true
			done(nil)
		}
		if fr.Pushes > 0 || fr.Ready {
			c.mu.Lock()
			c.high = max(c.high, fr.Total)
			c.mu.Unlock()
		}
		if fr.Pushes > 0 && f.recording.Load() {
			c.mu.Lock()
			c.pushes += int64(fr.Pushes)
			c.bytes += int64(len(b))
			if len(c.readings) < c.max {
				c.readings = append(c.readings, Reading{At: at, Total: fr.Total})
			}
			c.mu.Unlock()
		}
	}
}

// Record starts or stops keeping readings and counts.
func (f *Fleet) Record(on bool) { f.recording.Store(on) }

// FleetStats sums up what the subscribers received while recording.
type FleetStats struct {
	Pushes   int64 // messages received, summed over clients
	Bytes    int64 // bytes of the frames that carried them
	Frames   int64 // frames recorded (readings kept)
	Errors   int   // clients whose connection failed
	FirstErr error
}

// Stats sums the counters of every client.
func (f *Fleet) Stats() FleetStats {
	var s FleetStats
	for _, c := range f.clients {
		if c == nil {
			continue
		}
		c.mu.Lock()
		s.Pushes += c.pushes
		s.Bytes += c.bytes
		s.Frames += int64(len(c.readings))
		if c.err != nil {
			if s.Errors == 0 {
				s.FirstErr = c.err
			}
			s.Errors++
		}
		c.mu.Unlock()
	}
	return s
}

// Lags matches every client's readings against marks (see Lags) and returns
// all delays, sorted, and how many (client, mark) pairs were never reached.
func (f *Fleet) Lags(marks []Mark) (Durations, int) {
	var all []time.Duration
	missed := 0
	for _, c := range f.clients {
		if c == nil {
			continue
		}
		c.mu.Lock()
		l, m := Lags(marks, c.readings)
		c.mu.Unlock()
		all = append(all, l...)
		missed += m
	}
	return SortedDurations(all), missed
}

// Behind counts the subscribers whose watermark is still below total (a
// failed subscriber stays behind).
func (f *Fleet) Behind(total int64) int {
	n := 0
	for _, c := range f.clients {
		if c == nil {
			continue
		}
		c.mu.Lock()
		if c.high < total {
			n++
		}
		c.mu.Unlock()
	}
	return n
}

// Readings returns a copy of client i's readings.
func (f *Fleet) Readings(i int) []Reading {
	c := f.clients[i]
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Reading(nil), c.readings...)
}

// Close closes every connection and waits for the readers. It is safe to
// call twice.
func (f *Fleet) Close() {
	f.closing.Store(true)
	for _, c := range f.clients {
		if c != nil {
			// No close handshake: with thousands of connections it would
			// only add a bounded but pointless wait to every run.
			_ = c.conn.CloseNow()
		}
	}
	f.cancel()
	f.wg.Wait()
}
