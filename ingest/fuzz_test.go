package ingest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pulsehq/pulse/event"
)

// FuzzQueryEvent: for any pixel query string, no panic; an event comes
// back only when it passes Validate, and its props are bounded.
func FuzzQueryEvent(f *testing.F) {
	f.Add("site=demo&type=pageview&id=g1&url=https%3A%2F%2Fexample.com%2F&ts=1764258000123&p.plan=pro")
	f.Add("site=demo&type=t&id=x&p.=1&p.a=%00")
	f.Add("site=demo&site=x&type=t&id=%FF&ts=-1")
	h := New(nopPub{}, Config{Limits: event.Limits{MaxProps: 4}})
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest(http.MethodGet, "/v1/collect.gif", nil)
		r.URL.RawQuery = q
		e, err := h.queryEvent(r)
		if err != nil {
			if reject(err).Error == "" {
				t.Fatal("empty message")
			}
			return
		}
		if err := e.Validate(h.cfg.Limits); err != nil {
			t.Fatalf("accepted event fails Validate: %v", err)
		}
		if len(e.Props) > 4 {
			t.Fatalf("%d props", len(e.Props))
		}
	})
}
