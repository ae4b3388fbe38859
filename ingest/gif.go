package ingest

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/httperr"
)

// pixel is a 1x1 transparent GIF.
const pixel = ("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// gif serves GET /v1/collect.gif: one event from the query string, for
// pages that cannot run the tracker.
func (h *Handler) gif(c *gin.Context) error {
	if err := h.checkOrigin(c.Request, true); err != nil {
		return err
	}
	e, err := h.queryEvent(c.Request)
	if err != nil {
		r := reject(err)
		h.m.rejectEvents([]event.Reject{r})
		return refuse(http.StatusBadRequest, r.Error, []event.Reject{r})
	}
	evs, rejects, _, err := h.admit(c.Request, true, []event.Event{e}, []int{0}, nil)
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		// One event: its own reason says more than the batch message.
		return refuse(http.StatusForbidden, rejects[0].Error, rejects)
	}
	// The same limits as POST: a pixel is an event of its site like any.
	if err := h.limitAndEnrich(c.Request, evs); err != nil {
		return err
	}
	s := h.scratch()
	defer h.recycle(s)
	if err := h.publish(c.Request.Context(), &s.records, evs); err != nil {
		return err
	}
	writeGIF(c, http.StatusAccepted)
	return nil
}

// queryEvent builds an event from site, type, id, url, ref, uid, ts and
// p.KEY (props, string values) query parameters and validates it.
func (h *Handler) queryEvent(r *http.Request) (event.Event, error) {
	var e event.Event
	for k, vs := range r.URL.Query() {
		v := vs[0]
		switch k {
		case "id":
			e.ID = v
		case "site":
			e.Site = v
		case "type":
			e.Type = v
		case "url":
			e.URL = v
		case "ref":
			e.Ref = v
		case "uid":
			e.UID = v
		case "ts":
			ts, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return e, &event.FieldError{Field: "ts", Msg: "must be an integer (ms since the epoch)"}
			}
			e.TS = ts
		default:
			key, ok := strings.CutPrefix(k, "p.")
			if !ok {
				continue // unknown parameters, such as cache busters
			}
			if e.Props == nil {
				e.Props = make(map[string]any)
			}
			if len(e.Props) >= h.cfg.Limits.MaxProps {
				return e, &event.FieldError{Field: "props", Msg: "more than " + strconv.Itoa(h.cfg.Limits.MaxProps) + " keys"}
			}
			e.Props[key] = v
		}
	}
	return e, e.Validate(h.cfg.Limits)
}

func reject(err error) event.Reject {
	r := event.Reject{Error: err.Error(), Reason: "invalid"}
	var fe *event.FieldError
	if errors.As(err, &fe) {
		r.Reason = fe.Reason()
	}
	return r
}

func renderGIF(c *gin.Context, _ error, e *httperr.Error) {
	c.Writer.Header().Set("X-Pulse-Error", headerSafe(e.Msg))
	writeGIF(c, e.Status)
}

func writeGIF(c *gin.Context, status int) {
	c.Writer.Header().Set("Cache-Control", "no-store")
	c.Writer.Header().Set("Content-Type", "image/gif")
	c.Status(status)
	_, _ = c.Writer.WriteString(pixel)
}

// headerSafe keeps a message to printable ASCII so it fits a header.
func headerSafe(s string) string {
	if len(s) > 512 {
		s = s[:512]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}
