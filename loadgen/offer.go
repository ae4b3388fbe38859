package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// OfferConfig says what Offer posts, where and how fast.
type OfferConfig struct {
	Addr        string      // host:port of the target
	Path        string      // request path, e.g. /v1/collect
	Header      http.Header // added to every request
	ContentType string      // default text/plain
	Body        Template
	Connections int           // keep-alive connections; default 64
	Rate        float64       // requests/s; required
	Duration    time.Duration // length of the schedule; default 5s
	Timeout     time.Duration // for one request; default 10s
}

// OfferResult is what Offer did.
type OfferResult struct {
	Acks       []Ack // every request sent, in no particular order
	Scheduled  int64 // requests the schedule held: Rate × Duration
	NotOffered int64 // scheduled requests that found every connection busy, not sent
	Elapsed    time.Duration
}

// Offer posts cfg.Body at a fixed offered rate: an open loop that hands
// request i to an idle connection at start + i/Rate, from a ticker, whatever
// the target does. A request due while every connection waits for an
// answer is not sent and is counted as not offered, so a slow target shows
// as a shortfall instead of slowing the client down (coordinated
// omission); a request sent late is charged from its scheduled time
// (Ack.Sent).
//
// It is a raw HTTP/1.1 client built to leave the CPU to the target: the
// scheduling goroutine writes each request itself (prepared bytes with the
// template's counters patched in), and one goroutine per connection, parked
// in its read, takes the answer: one wakeup per request besides the ticks,
// where a wakeup costs tens of µs of CPU on a virtual machine.
func Offer(ctx context.Context, cfg OfferConfig) (OfferResult, error) {
	cfg = cfg.withDefaults()
	if cfg.Rate <= 0 || len(cfg.Body.Body) == 0 || cfg.Addr == "" {
		return OfferResult{}, fmt.Errorf("loadgen: offer needs an Addr, a Body and a Rate")
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &offerPool{ctx: runCtx, cfg: cfg, interval: time.Duration(float64(time.Second) / cfg.Rate)}
	if err := p.dialAll(requestHead(cfg)); err != nil {
		return OfferResult{}, err
	}
	res := OfferResult{Scheduled: int64(cfg.Rate * cfg.Duration.Seconds())}
	p.start = time.Now()
	for _, c := range p.conns {
		p.wg.Go(func() { p.read(c) })
	}
	res.NotOffered = p.schedule(res.Scheduled)
	p.awaitIdle(cfg.Timeout)
	cancel()
	p.closeAll()
	p.wg.Wait()
	res.Acks = p.acks
	res.Elapsed = time.Since(p.start)
	return res, nil
}

func (cfg OfferConfig) withDefaults() OfferConfig {
	if cfg.Connections <= 0 {
		cfg.Connections = 64
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.ContentType == "" {
		cfg.ContentType = "text/plain"
	}
	if cfg.Path == "" {
		cfg.Path = "/"
	}
	return cfg
}

// requestHead is the request line and headers of every request: the body
// has the same length each time.
func requestHead(cfg OfferConfig) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n", cfg.Path, cfg.Addr, cfg.ContentType, len(cfg.Body.Body))
	_ = cfg.Header.Write(&b)
	b.WriteString("\r\n")
	return b.Bytes()
}

// offerPool is the connections of one Offer.
type offerPool struct {
	ctx      context.Context // ends when Offer is done with the connections
	cfg      OfferConfig
	start    time.Time
	interval time.Duration
	conns    []*offerConn
	wg       sync.WaitGroup // the readers
	mu       sync.Mutex     // guards acks
	acks     []Ack
}

// offerConn is one keep-alive connection. The scheduler writes on it only
// while it is idle; its reader owns the rest.
type offerConn struct {
	mu       sync.Mutex
	conn     net.Conn
	br       *bufio.Reader
	req      []byte // the request, its body patched for each send
	body     []byte // req's body
	busy     bool   // a request is written and not yet answered
	inflight int64  // that request's index
}

func (p *offerPool) dialAll(head []byte) error {
	for range p.cfg.Connections {
		c := &offerConn{req: make([]byte, 0, len(head)+len(p.cfg.Body.Body))}
		c.req = append(append(c.req, head...), p.cfg.Body.Body...)
		c.body = c.req[len(head):]
		conn, err := p.dial()
		if err != nil {
			p.closeAll()
			return err
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 4096)
		p.conns = append(p.conns, c)
	}
	return nil
}

func (p *offerPool) dial() (net.Conn, error) {
	d := net.Dialer{Timeout: p.cfg.Timeout}
	conn, err := d.DialContext(p.ctx, "tcp", p.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", p.cfg.Addr, err)
	}
	return conn, nil
}

// schedule sends request i at start + i×interval until total were due,
// and returns how many found no idle connection. It wakes every interval,
// but no more often than every 2 ms: requests due within one tick go out
// together, at most 2 ms late.
func (p *offerPool) schedule(total int64) (notOffered int64) {
	t := time.NewTicker(max(p.interval, 2*time.Millisecond))
	defer t.Stop()
	var next int64
	rr := 0 // where the search for an idle connection starts
	for next < total {
		select {
		case <-p.ctx.Done():
			return notOffered
		case now := <-t.C:
			due := min(total, int64(now.Sub(p.start)/p.interval)+1)
			for ; next < due; next++ {
				if !p.send(next, &rr) {
					notOffered++
				}
			}
		}
	}
	return notOffered
}

// send writes request i on the first idle connection from *rr on; false
// when none is idle.
func (p *offerPool) send(i int64, rr *int) bool {
	for range len(p.conns) {
		c := p.conns[*rr]
		*rr = (*rr + 1) % len(p.conns)
		c.mu.Lock()
		if c.busy || c.conn == nil {
			c.mu.Unlock()
			continue
		}
		c.busy, c.inflight = true, i
		p.cfg.Body.Fill(c.body, i)
		if _, err := c.conn.Write(c.req); err != nil {
			// The reader's read fails too, and reports the request.
			c.conn.Close()
		}
		c.mu.Unlock()
		return true
	}
	return false
}

// read takes the answers of c until the pool is done, redialing after a
// failure, and then adds its Acks to the pool's.
func (p *offerPool) read(c *offerConn) {
	var acks []Ack
	defer func() {
		p.mu.Lock()
		p.acks = append(p.acks, acks...)
		p.mu.Unlock()
	}()
	for {
		status, keep, err := readAnswer(c.br)
		done := time.Now()
		c.mu.Lock()
		if c.busy {
			acks = append(acks, Ack{Index: c.inflight, Sent: p.start.Add(time.Duration(c.inflight) * p.interval), Done: done,
				Events: p.cfg.Body.Units, Status: status, Failed: err != nil})
			c.busy = false
		}
		if err == nil && keep {
			c.mu.Unlock()
			continue
		}
		c.conn.Close()
		c.conn = nil // not idle until redialed
		c.mu.Unlock()
		if !p.redial(c) {
			return
		}
	}
}

// redial connects c anew, retrying until the pool is done; false then.
func (p *offerPool) redial(c *offerConn) bool {
	for p.ctx.Err() == nil {
		conn, err := p.dial()
		if err == nil {
			c.mu.Lock()
			defer c.mu.Unlock()
			if p.ctx.Err() != nil {
				// closeAll may have passed c already: nothing would close
				// this connection and end the reader.
				conn.Close()
				return false
			}
			c.conn = conn
			c.br.Reset(conn)
			return true
		}
		select {
		case <-p.ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

// awaitIdle waits, at most timeout, until no request is unanswered.
func (p *offerPool) awaitIdle(timeout time.Duration) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline) && p.ctx.Err() == nil; time.Sleep(10 * time.Millisecond) {
		busy := false
		for _, c := range p.conns {
			c.mu.Lock()
			busy = busy || c.busy
			c.mu.Unlock()
		}
		if !busy {
			return
		}
	}
}

// closeAll closes every connection, which ends the readers: a request
// still unanswered is reported failed.
func (p *offerPool) closeAll() {
	for _, c := range p.conns {
		c.mu.Lock()
		if c.conn != nil {
			c.conn.Close()
		}
		c.mu.Unlock()
	}
}

// readAnswer reads one response to its end and returns its status and
// whether the connection stays open.
func readAnswer(br *bufio.Reader) (status int, keep bool, err error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, false, fmt.Errorf("read answer: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp.StatusCode, false, fmt.Errorf("read answer body: %w", err)
	}
	return resp.StatusCode, !resp.Close, nil
}
