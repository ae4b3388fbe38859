package ingest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/httperr"
)

// Headers of /api/event answers, made once (see exposeHeaders).
var (
	plausibleExpose = []string{"Retry-After, X-Pulse-Error, Pulse-Dedup-Window, X-Plausible-Dropped"}
	textType        = []string{"text/plain; charset=utf-8"}
)

// plausible serves POST /api/event, Plausible's Events API, so that
// Plausible's trackers and server-side SDKs send to Pulse unchanged. It
// takes the path of /v1/collect: the same origin check, body bounds
// (gzip included), site list, write keys, rate limits, admission limit
// and publish, and the same metrics. A body is one event, made into one
// Pulse event per site of its domain list; each gets a random id (their
// senders keep none, so a retry is a new event, as in Plausible) and the
// receive time as ts. Answers are Plausible's: 202 "ok", with
// X-Plausible-Dropped: N when N events were refused by the site rules;
// 400 {"errors":{field:[message]}}; and /v1/collect's 403, 413, 415, 429
// and 503 in that shape.
func (h *Handler) plausible(c *gin.Context) error {
	s := h.scratch()
	defer h.recycle(s)
	buf := &s.body
	c.Writer.Header()["Access-Control-Expose-Headers"] = plausibleExpose
	if err := h.checkOrigin(c.Request, false); err != nil {
		return err
	}
	if err := h.readBodyMax(c.Writer, c.Request, buf, min(h.cfg.Limits.MaxBodyBytes, plausibleMaxBody)); err != nil {
		return err
	}
	evs, err := h.plausibleEvents(buf.Bytes())
	if err != nil {
		return err
	}
	idx := make([]int, len(evs))
	for i := range idx {
		idx[i] = i
	}
	evs, rejects, _, err := h.admit(c.Request, false, evs, idx, nil)
	if err != nil {
		return err
	}
	if len(evs) > 0 {
		if err := h.limitAndEnrich(c.Request, evs); err != nil {
			return err
		}
		if err := h.publish(c.Request.Context(), &s.records, evs); err != nil {
			return err
		}
	}
	hd := c.Writer.Header()
	if len(rejects) > 0 {
		hd.Set("X-Plausible-Dropped", strconv.Itoa(len(rejects)))
		hd.Set("X-Pulse-Error", headerSafe(rejects[0].Error))
	}
	hd["Cache-Control"] = noStore
	hd["Content-Type"] = textType
	c.Status(http.StatusAccepted)
	_, _ = c.Writer.WriteString("ok")
	return nil
}

// plausibleEvents reads body into one validated event per site. In hash
// routing mode the path goes on past the fragment mark, as in Plausible:
// Enrich sets it so, and the record keeps it for replay.
func (h *Handler) plausibleEvents(body []byte) ([]event.Event, error) {
	refused := func(err error) error {
		var pe *plausibleError
		if errors.As(err, &pe) {
			h.m.rejectEvents([]event.Reject{{Error: err.Error(), Reason: pe.reason}})
		}
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		h.m.rejected.WithLabelValues("empty").Inc()
		return nil, &plausibleError{"request", "empty", "body holds no event"}
	}
	pe, err := parsePlausible(body, h.cfg.Limits.MaxProps)
	if err != nil {
		return nil, refused(err)
	}
	evs := make([]event.Event, len(pe.sites))
	for i, site := range pe.sites {
		e := &evs[i]
		*e = event.Event{ID: rand.Text(), Site: site, Type: pe.name, URL: pe.url, Ref: pe.ref, Props: pe.props, Hash: pe.hashMode}
		if err := e.ValidateFreeType(h.cfg.Limits); err != nil {
			return nil, refused(plausibleField(err))
		}
	}
	return evs, nil
}

// plausibleField names a Validate error with Plausible's field names.
func plausibleField(err error) *plausibleError {
	var fe *event.FieldError
	if !errors.As(err, &fe) {
		return &plausibleError{"request", "invalid", err.Error()}
	}
	field := map[string]string{"type": "event_name", "site": "domain", "ref": "referrer"}[fe.Reason()]
	if field == "" {
		field = fe.Reason()
	}
	return &plausibleError{field, fe.Reason(), err.Error()}
}

// renderPlausible answers a failure of /api/event as Plausible does:
// {"errors":{"field":["message"]}}.
func renderPlausible(c *gin.Context, err error, e *httperr.Error) {
	field, msg := "request", e.Msg
	var pe *plausibleError
	if errors.As(err, &pe) {
		field, msg = pe.field, pe.msg
	}
	b, mErr := json.Marshal(map[string]map[string][]string{"errors": {field: {msg}}})
	if mErr != nil { // cannot happen: strings
		b = []byte(`{"errors":{"request":["internal error"]}}`)
	}
	hd := c.Writer.Header()
	hd["Cache-Control"] = noStore
	hd["Content-Type"] = jsonType
	c.Status(e.Status)
	_, _ = c.Writer.Write(b)
}
