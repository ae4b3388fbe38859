package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/httperr"
	"github.com/pulsehq/pulse/stream"
)

// collect serves POST /v1/collect.
func (h *Handler) collect(c *gin.Context) error {
	s := h.scratch()
	defer h.recycle(s)
	if err := h.checkOrigin(c.Request, false); err != nil {
		return err
	}
	if err := h.readBody(c.Writer, c.Request, &s.body); err != nil {
		return err
	}
	evs, idx, rejects, err := s.decode(s.body.Bytes(), h.cfg.Limits)
	if err != nil {
		return h.bodyError(err)
	}
	h.m.rejectEvents(rejects)
	evs, rejects, refused, err := h.admit(c.Request, false, evs, idx, rejects)
	if err != nil {
		return err
	}
	if len(evs) == 0 && refused {
		return denied(rejects)
	}
	if len(evs) == 0 {
		return refuse(http.StatusBadRequest, "no valid event", rejects)
	}
	if err := h.limitAndEnrich(c.Request, evs); err != nil {
		return err
	}
	if err := h.publish(c.Request.Context(), &s.records, evs); err != nil {
		return err
	}
	writeAccepted(c, len(evs), rejects)
	return nil
}

// limitSites charges each site of evs against its rate and against the
// share of it that r's client may take.
func (h *Handler) limitSites(client netip.Addr, evs []event.Event) error {
	if h.cfg.Sites == nil {
		return nil
	}
	site, n := evs[0].Site, 0
	check := func() error {
		if ok, wait := h.cfg.Sites.AllowSite(client, site, n); !ok {
			h.m.refuse("rate_limited", len(evs))
			secs := int((wait + time.Second - 1) / time.Second)
			if secs < 1 {
				secs = 1
			}
			return httperr.New(http.StatusTooManyRequests,
				fmt.Sprintf("rate limit: site %q sends too many events, retry in %ds", site, secs)).
				WithRetryAfter(time.Duration(secs) * time.Second)
		}
		return nil
	}
	// Requests almost always carry one site; charge runs of the same site.
	for _, e := range evs {
		if e.Site != site {
			if err := check(); err != nil {
				return err
			}
			site, n = e.Site, 0
		}
		n++
	}
	return check()
}

// readBody reads the request body into buf, refusing more than
// MaxBodyBytes without reading further. A gzip body is bounded twice: its
// decompressed bytes by MaxBodyBytes, and the bytes read from the wire by
// rawBodyLimit, so a stream of empty deflate blocks (no output, endless
// input) is cut off as soon as it outgrows any honest batch, not after the
// read timeout. Past the raw bound, net/http closes the connection rather
// than draining the rest.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) error {
	return h.readBodyMax(w, r, buf, h.cfg.Limits.MaxBodyBytes)
}

// readBodyMax is readBody with max in place of MaxBodyBytes.
func (h *Handler) readBodyMax(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer, max int64) error {
	tooLarge := func(what string, limit int64) error {
		h.m.rejected.WithLabelValues("too_large").Inc()
		return httperr.New(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("%s larger than %d bytes: send fewer events per request", what, limit))
	}
	raw := rawBodyLimit(max)
	var body io.Reader = r.Body
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
		if r.ContentLength > max {
			return tooLarge("body", max)
		}
		if r.ContentLength >= 0 {
			// net/http reads no more than Content-Length of the body: a
			// beacon's body needs no other bound, nor its two readers.
			buf.Grow(int(r.ContentLength) + 1)
			if _, err := buf.ReadFrom(r.Body); err != nil {
				return httperr.Wrap(http.StatusBadRequest, "read body: "+err.Error(), err)
			}
			return nil
		}
		body = http.MaxBytesReader(w, r.Body, raw)
	case "gzip":
		if r.ContentLength > raw {
			return tooLarge("compressed body", raw)
		}
		body = http.MaxBytesReader(w, r.Body, raw)
		// Server-side senders compress batches; the limit applies to the
		// decompressed body, so a small bomb is refused like a large body.
		zr, err := gzip.NewReader(body)
		if err != nil {
			if errors.As(err, new(*http.MaxBytesError)) {
				return tooLarge("compressed body", raw)
			}
			return httperr.Wrap(http.StatusBadRequest, "bad gzip body", err)
		}
		defer zr.Close()
		body = zr
	default:
		h.m.rejected.WithLabelValues("encoding").Inc()
		return httperr.New(http.StatusUnsupportedMediaType, "Content-Encoding "+enc+" not supported: send gzip or identity")
	}
	n, err := buf.ReadFrom(io.LimitReader(body, max+1))
	if errors.As(err, new(*http.MaxBytesError)) {
		return tooLarge("compressed body", raw)
	}
	if err != nil {
		return httperr.Wrap(http.StatusBadRequest, "read body: "+err.Error(), err)
	}
	if n > max {
		return tooLarge("body", max)
	}
	return nil
}

// rawBodyLimit is the most bytes read from the wire for a body whose
// decompressed size may be max: gzip of max bytes of incompressible data
// takes max plus 5 bytes per 64 KiB stored block plus header and trailer,
// so max + max/1024 + 4 KiB admits every honest batch.
func rawBodyLimit(max int64) int64 { return max + max/1024 + 4<<10 }

// bodyError maps a whole-body decode failure to its answer.
func (h *Handler) bodyError(err error) error {
	status, reason := http.StatusBadRequest, "malformed"
	switch {
	case errors.Is(err, event.ErrTooLarge):
		status, reason = http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, event.ErrTooMany):
		status, reason = http.StatusRequestEntityTooLarge, "too_many"
	case errors.Is(err, event.ErrEmpty):
		reason = "empty"
	}
	h.m.rejected.WithLabelValues(reason).Inc()
	return httperr.New(status, err.Error())
}

// publish admits evs against MaxInFlight, waiting at most AdmitWait, and
// puts them into the stream, encoded in the storage of rec. It returns nil
// only once they are durable. A failed publish may leave the stream still
// reading the records (a Put whose caller went away), so their storage is
// then given up rather than reused.
func (h *Handler) publish(ctx context.Context, rec *records, evs []event.Event) error {
	n := int64(len(evs))
	entries, err := rec.encode(evs)
	if err != nil {
		return err
	}
	if !h.sem.TryAcquire(n) {
		wctx, cancel := context.WithTimeout(ctx, h.cfg.AdmitWait)
		err := h.sem.Acquire(wctx, n)
		cancel()
		if err != nil && ctx.Err() != nil {
			// The client went away while waiting: nobody reads the answer.
			h.m.refuse("canceled", len(evs))
			return httperr.Wrap(http.StatusServiceUnavailable, "request canceled", ctx.Err()).WithRetryAfter(h.cfg.RetryAfter)
		}
		if err != nil {
			h.m.overload.Inc()
			h.m.refuse("overload", len(evs))
			return httperr.New(http.StatusServiceUnavailable,
				"overloaded: too many events waiting for the stream, retry later").WithRetryAfter(h.cfg.RetryAfter)
		}
	}
	h.m.inflight.Add(float64(n))
	err = h.pub.Publish(ctx, entries)
	h.m.inflight.Sub(float64(n))
	h.sem.Release(n)
	if err != nil {
		*rec = records{}
		h.m.refuse("unavailable", len(evs))
		return httperr.Wrap(http.StatusServiceUnavailable,
			"stream unavailable, retry later", err).WithRetryAfter(h.cfg.RetryAfter)
	}
	h.m.accepted.Add(float64(n))
	return nil
}

// encode makes the stream entries of evs in the storage of rec. Records
// share one buffer and keys one string: a few allocations per request
// instead of two per event, and none for the records once rec has served
// a request of the size. Each Data is capped so that an append by a
// consumer cannot write into its neighbour.
func (rec *records) encode(evs []event.Event) ([]stream.Entry, error) {
	n := len(evs)
	if cap(rec.entries) < n {
		rec.entries = make([]stream.Entry, n)
		rec.ends = make([]int, n)
	}
	entries, ends := rec.entries[:n], rec.ends[:n]
	buf, kb := rec.data[:0], rec.keys[:0]
	if cap(buf) < 400*n {
		buf = make([]byte, 0, 400*n)
	}
	for i := range evs {
		start := len(buf)
		var err error
		if buf, err = event.AppendJSON(buf, &evs[i]); err != nil {
			return nil, fmt.Errorf("encode event %d: %w", i, err)
		}
		entries[i].Data = buf[start:len(buf):len(buf)]
		kb = evs[i].AppendPartitionKey(kb)
		ends[i] = len(kb)
	}
	rec.data, rec.keys = buf, kb
	keys := string(kb)
	start := 0
	for i := range evs {
		entries[i].Key = keys[start:ends[i]]
		start = ends[i]
	}
	return entries, nil
}
