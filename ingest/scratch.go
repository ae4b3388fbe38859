package ingest

import (
	"bytes"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/stream"
)

// Bounds of what the scratch pool keeps, so that it does not pin the
// memory of rare huge requests.
const (
	maxPooledBody   = 256 << 10 // body and record bytes
	maxPooledEvents = 128       // decoded events (about 500 bytes each)
)

// scratch is the memory one request works in: its body, its decoded
// events and their stream records. Handlers take one from Handler.scratch
// and give it back with Handler.recycle, so that a request allocates
// almost nothing of its own size: at 50 events a request, the events and
// the records were most of what ingest allocated, and of its GC work.
type scratch struct {
	body bytes.Buffer
	evs  []event.Event
	idx  []int
	// decoded is how many of evs the last decode filled: what recycle
	// clears, so that no string of the request stays reachable.
	decoded int
	records
}

// records is the storage of the stream entries of one request: their
// records share one buffer and their keys one string (encode).
type records struct {
	entries []stream.Entry
	data    []byte
	keys    []byte
	ends    []int
}

// decode decodes body into the scratch's events.
func (s *scratch) decode(body []byte, lim event.Limits) ([]event.Event, []int, []event.Reject, error) {
	evs, idx, rejects, err := event.DecodeInto(s.evs, s.idx, body, lim)
	if cap(evs) <= maxPooledEvents {
		s.evs, s.idx, s.decoded = evs[:0], idx[:0], len(evs)
	}
	return evs, idx, rejects, err
}

// scratch takes an empty scratch from the pool.
func (h *Handler) scratch() *scratch {
	return h.scratches.Get().(*scratch)
}

// recycle empties s and returns it to the pool, keeping only buffers of
// ordinary size.
func (h *Handler) recycle(s *scratch) {
	if s.body.Cap() > maxPooledBody {
		s.body = bytes.Buffer{}
	}
	s.body.Reset()
	clear(s.evs[:s.decoded])
	s.decoded = 0
	if cap(s.data) > maxPooledBody || cap(s.entries) > maxPooledEvents {
		s.records = records{}
	}
	clear(s.entries[:cap(s.entries)])
	h.scratches.Put(s)
}
