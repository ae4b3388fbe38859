package push

import (
	"sync"
	"time"
)

// delivery is one delta for one subscriber, chosen by the hub loop.
type delivery struct {
	s *sub
	b *batch
}

// sender is the scratch space of one goroutine that delivers.
type sender struct {
	raw *rawWriter
	buf []byte // sendNow's frame
}

func newSender() *sender { return &sender{raw: newRawWriter()} }

// minParallel is the number of deliveries of one flush from which the
// senders take them: below it the loop delivers, since waking a sender
// costs more than a few writes.
const minParallel = 256

// senders deliver a large flush's deltas, one per core: a delivery is a
// system call, and the loop alone would use one core of several and stop
// reading notices meanwhile. The loop waits for a flush's deliveries
// before it delivers again (deliverAll), so a subscriber's deltas keep
// their order. Owned by Run.
type senders struct {
	work     chan sendChunk
	wg       sync.WaitGroup // the goroutines
	inflight sync.WaitGroup // the chunks of the last flush; only the loop waits
}

type sendChunk struct {
	ds  []delivery
	now time.Time
}

// startSenders starts n sender goroutines; stop ends them.
func (h *Hub) startSenders(n int) *senders {
	p := &senders{work: make(chan sendChunk, n)}
	for range n {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			snd := newSender()
			for ch := range p.work {
				for _, d := range ch.ds {
					h.deliver(snd, d, ch.now)
				}
				p.inflight.Done()
			}
		}()
	}
	return p
}

func (p *senders) stop() {
	p.inflight.Wait()
	close(p.work)
	p.wg.Wait()
}

// deliverAll delivers ds, on the senders when there are many; it returns
// once the previous flush's deliveries are done and ds's have started.
// ds must stay as it is until the next call.
func (h *Hub) deliverAll(ds []delivery, now time.Time) {
	h.pool.inflight.Wait()
	if len(ds) < minParallel {
		for _, d := range ds {
			h.deliver(h.snd, d, now)
		}
		return
	}
	n := h.nsenders
	size := (len(ds) + n - 1) / n
	for len(ds) > 0 {
		k := min(size, len(ds))
		h.pool.inflight.Add(1)
		h.pool.work <- sendChunk{ds: ds[:k], now: now}
		ds = ds[k:]
	}
}

// deliver hands b to s's connection from the hub loop. When the
// connection has nothing queued and no writer running, the delta is
// written to its socket at once, without waiting (sendNow): no goroutine
// starts and the queue is not touched, which is most of what a delivered
// message costs besides the system call. Otherwise, or when the socket
// does not take it whole, it goes through the queue and the writer, as
// before. Deliveries to one connection may run on several goroutines at
// once (two of its subscriptions): c.writing admits one to the socket.
func (h *Hub) deliver(snd *sender, d delivery, now time.Time) {
	s, b, c := d.s, d.b, d.s.c
	if !c.writing.CompareAndSwap(false, true) {
		// A writer runs: it takes the queue again before it ends.
		h.queueDelta(s, b, now)
		return
	}
	// This goroutine is the connection's writer until it lets go.
	switch h.sendNow(snd, s, b) {
	case sentWhole:
		c.writing.Store(false)
		// A push that found writing set meanwhile is ours to send.
		if c.q.pending() && c.writing.CompareAndSwap(false, true) {
			c.async(c.write)
		}
		return
	case sentPart:
		// The rest of the frame, and io.mu with it, now belong to the
		// writer; a connection that ended has no writer to take them.
		if !c.async(c.write) {
			c.rest = nil
			c.io.mu.Unlock()
		}
		return
	}
	h.queueDelta(s, b, now) // its wake finds writing set
	c.async(c.write)
}

func (h *Hub) queueDelta(s *sub, b *batch, now time.Time) {
	if merges, _ := s.c.q.pushDelta(s, b, now); merges > 0 {
		h.m.merges.Add(float64(merges))
	}
}

type sendResult int

const (
	sentNone  sendResult = iota // nothing written: queue the delta
	sentWhole                   // the frame went out
	sentPart                    // c.rest holds the frame's tail and io.mu stays locked for the writer
)

// sendNow writes b for s as one frame straight to the socket, without
// waiting, when that keeps the connection's order: nothing queued (an
// earlier snapshot or delta goes first), no reset pending, no other frame
// being written. The caller holds c.writing.
func (h *Hub) sendNow(snd *sender, s *sub, b *batch) sendResult {
	c := s.c
	if c.io == nil || c.io.raw == nil || s.closed.Load() {
		return sentNone
	}
	q := c.q
	q.mu.Lock()
	busy := len(q.frames) > 0 || len(q.order) > 0 || s.resetPending
	q.mu.Unlock()
	if busy || !c.io.mu.TryLock() {
		return sentNone
	}
	if c.io.closeSent {
		c.io.mu.Unlock()
		return sentNone
	}
	snd.buf = appendTextFrame(snd.buf[:0], s.prefix, b.body)
	n := snd.raw.tryWrite(c.io.raw, snd.buf)
	switch {
	case n == len(snd.buf):
		c.io.mu.Unlock()
		h.m.deltasSent.Inc()
		return sentWhole
	case n == 0:
		c.io.mu.Unlock()
		return sentNone
	}
	c.rest = append([]byte(nil), snd.buf[n:]...)
	h.m.deltasSent.Inc() // the writer finishes it, or the connection ends
	return sentPart
}

// finishRest writes the tail of a frame sendNow began; io.mu is held for
// it. False when the write failed.
func (c *conn) finishRest() bool {
	rest := c.rest
	c.rest = nil
	_, err := c.io.Conn.Write(rest)
	c.io.mu.Unlock()
	return err == nil
}
