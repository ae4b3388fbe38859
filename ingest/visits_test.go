package ingest

import (
	"net/http"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/enrich"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/visitorid"
)

// TestVisitFields: accepted events carry the visit fields and, sent
// without a uid, a visitor id; when the day's salt cannot be read the
// request is a 503 with Retry-After and nothing is published.
func TestVisitFields(t *testing.T) {
	up := redistest.Start(t).Client(t)
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { down.Close() })
	body := `{"id":"a","site":"demo","type":"pageview","url":"https://demo.example/?utm_source=hn","ref":"https://www.google.com/"}`

	x, err := enrich.New(nil, visitorid.New(up))
	if err != nil {
		t.Fatal(err)
	}
	pub := &memPub{}
	r, _ := newServer(t, pub, Config{Visits: x})
	if w := post(r, body, "text/plain"); w.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	evs := pub.events(t)
	if len(evs) != 1 || evs[0].Source != "Hacker News" || evs[0].UTMSource != "hn" || evs[0].Browser != "Chrome" || len(evs[0].UID) != 32 {
		t.Fatalf("published %+v, want source Hacker News (the tag hn, named), browser Chrome and a visitor id", evs)
	}

	y, err := enrich.New(nil, visitorid.New(down))
	if err != nil {
		t.Fatal(err)
	}
	pub = &memPub{}
	r, _ = newServer(t, pub, Config{Visits: y})
	w := post(r, body, "text/plain")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || len(pub.events(t)) != 0 {
		t.Fatalf("without the salt: status %d, Retry-After %q, %d published; want 503, a Retry-After and none",
			w.Code, w.Header().Get("Retry-After"), len(pub.events(t)))
	}
}
