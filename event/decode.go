package event

import (
	"bytes"
	"fmt"
)

// Decode splits a collect body into events and validates each on its own.
//
// The body is one JSON object, a JSON array of objects, or NDJSON (one
// object per line, blank lines ignored); the form is told from the content,
// never from a Content-Type. A body starting with '[' is an array; a body
// that is exactly one JSON object, even spread over lines, is one event;
// anything else is read as lines. Every element or non-blank line has
// a request index (0-based, in order); idx[i] is the index of evs[i], and
// each refused element has a Reject with its index. A bad element refuses
// only itself, except inside a JSON array whose syntax is broken, where the
// end of the element, and so the array, cannot be known.
//
// err (wrapping ErrEmpty, ErrTooLarge, ErrTooMany or ErrMalformed) is
// returned only when the body as a whole is unusable. Unknown fields are
// ignored and dropped; server fields sent by a client are unknown fields.
// Accepted events pass ValidateFreeType: their type may be any event name
// (Plausible's "Outbound Link: Click", which the tracker sends too), as on
// /api/event. Decode does not Enrich them.
func Decode(body []byte, lim Limits) (evs []Event, idx []int, rejects []Reject, err error) {
	return DecodeInto(nil, nil, body, lim)
}

// DecodeInto is Decode into the storage of evs and idx, whose lengths are
// ignored: a caller that decodes many bodies reuses them instead of
// allocating the events of each (the events are what a batch costs most).
// The results share that storage when it is large enough.
func DecodeInto(evs []Event, idx []int, body []byte, lim Limits) (_ []Event, _ []int, rejects []Reject, err error) {
	lim = lim.WithDefaults()
	if int64(len(body)) > lim.MaxBodyBytes {
		return nil, nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(body), lim.MaxBodyBytes)
	}
	// A UTF-8 byte order mark is not JSON but some senders write one.
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	d := decoder{p: parser{b: body, s: string(body), lim: lim}, evs: evs[:0], idx: idx[:0]}
	d.p.ws()
	if d.p.i == len(body) {
		return nil, nil, nil, ErrEmpty
	}
	switch body[d.p.i] {
	case '[':
		err = d.array()
	case '{':
		if !d.single() {
			err = d.lines()
		}
	default:
		err = d.lines()
	}
	if err != nil {
		return nil, nil, nil, err
	}
	return d.evs, d.idx, d.rejects, nil
}

type decoder struct {
	p       parser
	evs     []Event
	idx     []int
	rejects []Reject
	n       int // elements seen
}

// reserve makes room for n events, unless the storage the decoder was
// given holds them.
func (d *decoder) reserve(n int) {
	if cap(d.evs) < n {
		d.evs = make([]Event, 0, n)
	}
	if cap(d.idx) < n {
		d.idx = make([]int, 0, n)
	}
}

// add validates one parsed element and files it as accepted or refused.
func (d *decoder) add(e *Event, fe *FieldError, synErr error) {
	i := d.n
	d.n++
	switch {
	case synErr != nil:
		d.rejects = append(d.rejects, reject(i, synErr))
	case fe != nil:
		d.rejects = append(d.rejects, reject(i, fe))
	default:
		if err := e.ValidateFreeType(d.p.lim); err != nil {
			d.rejects = append(d.rejects, reject(i, err))
			return
		}
		if cap(d.evs) == 0 {
			d.evs = make([]Event, 0, 1)
		}
		d.evs = append(d.evs, *e)
		d.idx = append(d.idx, i)
	}
}

// single decodes a body that is one JSON object and nothing else. It
// reports false, having kept nothing, when the body is something else.
func (d *decoder) single() bool {
	var e Event
	fe, synErr := d.p.event(&e)
	if synErr != nil {
		d.p.i = 0
		return false
	}
	d.p.ws()
	if d.p.i != len(d.p.b) {
		d.p.i = 0
		return false
	}
	d.add(&e, fe, nil)
	return true
}

func (d *decoder) array() error {
	p := &d.p
	p.i++ // '['
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		return fmt.Errorf("%w: empty array", ErrEmpty)
	}
	// Most bodies are batches of similar size; one allocation up front.
	d.reserve(min(bytes.Count(p.b, []byte(`"id"`)), p.lim.MaxEvents))
	for {
		if d.n >= p.lim.MaxEvents {
			return fmt.Errorf("%w: more than %d", ErrTooMany, p.lim.MaxEvents)
		}
		var e Event
		fe, synErr := p.event(&e)
		if synErr != nil {
			return fmt.Errorf("%w: element %d: %w", ErrMalformed, d.n, synErr)
		}
		d.add(&e, fe, nil)
		p.ws()
		if p.i >= len(p.b) {
			return fmt.Errorf("%w: %w", ErrMalformed, p.unexpected())
		}
		switch p.b[p.i] {
		case ',':
			p.i++
			continue
		case ']':
			p.i++
			p.ws()
			if p.i != len(p.b) {
				return fmt.Errorf("%w: %w", ErrMalformed, p.synErr("data after the array"))
			}
			return nil
		default:
			return fmt.Errorf("%w: %w", ErrMalformed, p.unexpected())
		}
	}
}

// lines decodes NDJSON: each non-blank line is one element, parsed on its
// own so that a broken line cannot swallow the next.
func (d *decoder) lines() error {
	body, str := d.p.b, d.p.s
	d.reserve(min(bytes.Count(body, []byte{'\n'})+1, d.p.lim.MaxEvents))
	for len(body) > 0 {
		line, lineStr := body, str
		if nl := bytes.IndexByte(body, '\n'); nl >= 0 {
			line, body = body[:nl], body[nl+1:]
			lineStr, str = str[:nl], str[nl+1:]
		} else {
			body, str = nil, ""
		}
		trimmed := bytes.TrimLeft(line, " \t\r")
		line, lineStr = trimmed, lineStr[len(line)-len(trimmed):]
		if len(line) == 0 {
			continue
		}
		if d.n >= d.p.lim.MaxEvents {
			return fmt.Errorf("%w: more than %d", ErrTooMany, d.p.lim.MaxEvents)
		}
		d.p.b, d.p.s, d.p.i = line, lineStr, 0
		var e Event
		fe, synErr := d.p.event(&e)
		if synErr == nil {
			d.p.ws()
			if d.p.i != len(line) {
				synErr = d.p.synErr("data after the object (one object per line)")
			}
		}
		if synErr != nil {
			// Offsets in messages are relative to the line.
			d.add(nil, nil, synErr)
			continue
		}
		d.add(&e, fe, nil)
	}
	if d.n == 0 {
		return ErrEmpty
	}
	return nil
}
