package loadgen

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTemplateFill(t *testing.T) {
	var b TemplateBuilder
	b.Text(`[`)
	for j := range 2 {
		if j > 0 {
			b.Text(`,`)
		}
		b.Text(`{"id":"x-`)
		b.Field(6, j, 0)
		b.Text(`","page":"p`)
		b.Field(2, j, 7)
		b.Text(`"}`)
	}
	b.Text(`]`)
	tmpl := b.Template(2)
	tests := []struct {
		i    int64
		want string
	}{
		{0, `[{"id":"x-000000","page":"p00"},{"id":"x-000001","page":"p01"}]`},
		{3, `[{"id":"x-000006","page":"p06"},{"id":"x-000007","page":"p00"}]`},
		{500000, `[{"id":"x-000000","page":"p01"},{"id":"x-000001","page":"p02"}]`}, // ids wrap past 6 digits; 10^6 mod 7 = 1
	}
	body := append([]byte(nil), tmpl.Body...)
	for _, tt := range tests {
		tmpl.Fill(body, tt.i)
		if string(body) != tt.want {
			t.Errorf("request %d: %s, want %s", tt.i, body, tt.want)
		}
	}
}

// collector answers like a beacon endpoint and keeps the ids it received.
type collector struct {
	mu    sync.Mutex
	ids   map[string]int
	reqs  int
	hold  chan struct{} // when set, answers wait for it to close
	close func(n int) bool
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var evs []struct{ ID string }
	if err := json.Unmarshal(body, &evs); err != nil || r.Header.Get("X-Test") != "yes" || r.URL.Path != "/v1/collect" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.reqs++
	n := c.reqs
	for _, e := range evs {
		c.ids[e.ID]++
	}
	c.mu.Unlock()
	if c.hold != nil {
		<-c.hold
	}
	if c.close != nil && c.close(n) {
		w.Header().Set("Connection", "close")
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"accepted":`)
	if n%2 == 0 {
		w.(http.Flusher).Flush() // a chunked answer
	}
	_, _ = io.WriteString(w, `2}`)
}

func offerTemplate() Template {
	var b TemplateBuilder
	b.Text(`[{"id":"e`)
	b.Field(9, 0, 0)
	b.Text(`"},{"id":"e`)
	b.Field(9, 1, 0)
	b.Text(`"}]`)
	return b.Template(2)
}

// TestOffer: every scheduled request is either sent or counted as not
// offered; every sent one is answered and accounted for, with ids of its
// own, across answers that close the connection and chunked answers.
func TestOffer(t *testing.T) {
	c := &collector{ids: map[string]int{}, close: func(n int) bool { return n%5 == 0 }}
	srv := httptest.NewServer(c)
	defer srv.Close()
	res, err := Offer(t.Context(), OfferConfig{
		Addr: strings.TrimPrefix(srv.URL, "http://"), Path: "/v1/collect", Header: http.Header{"X-Test": {"yes"}},
		Body: offerTemplate(), Connections: 4, Rate: 400, Duration: 250 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Scheduled != 100 || int64(len(res.Acks))+res.NotOffered != res.Scheduled {
		t.Fatalf("scheduled %d, sent %d, not offered %d: want 100 = sent + not offered", res.Scheduled, len(res.Acks), res.NotOffered)
	}
	st := Summarize(res.Acks, res.Elapsed)
	if st.Status[http.StatusAccepted] != int64(len(res.Acks)) || st.Events != 2*int64(len(res.Acks)) {
		t.Fatalf("statuses %v, %d events, for %d requests", st.Status, st.Events, len(res.Acks))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reqs != len(res.Acks) || len(c.ids) != 2*c.reqs {
		t.Fatalf("server got %d requests, %d distinct ids; client sent %d requests", c.reqs, len(c.ids), len(res.Acks))
	}
	seen := map[int64]bool{}
	for _, a := range res.Acks {
		if seen[a.Index] || a.Done.Before(a.Sent) && a.OK() {
			t.Fatalf("ack %+v: index twice, or answered before it was due", a)
		}
		seen[a.Index] = true
	}
}

// TestOfferNotOffered: while every connection waits for its answer, the
// requests that fall due are not sent but counted; the unanswered ones are
// reported failed once Offer gives up on them.
func TestOfferNotOffered(t *testing.T) {
	c := &collector{ids: map[string]int{}, hold: make(chan struct{})}
	srv := httptest.NewServer(c)
	defer srv.Close()
	defer close(c.hold)
	res, err := Offer(t.Context(), OfferConfig{
		Addr: strings.TrimPrefix(srv.URL, "http://"), Path: "/v1/collect", Header: http.Header{"X-Test": {"yes"}},
		Body: offerTemplate(), Connections: 2, Rate: 500, Duration: 100 * time.Millisecond, Timeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Acks) != 2 || res.NotOffered != res.Scheduled-2 {
		t.Fatalf("%d sent, %d of %d not offered; want 2 sent (one per connection), the rest not offered", len(res.Acks), res.NotOffered, res.Scheduled)
	}
	for _, a := range res.Acks {
		if a.OK() {
			t.Fatalf("unanswered request reported %+v", a)
		}
	}
}

func TestOfferRefusesNoTarget(t *testing.T) {
	if _, err := Offer(t.Context(), OfferConfig{Addr: "127.0.0.1:1", Body: offerTemplate(), Rate: 10}); err == nil {
		t.Fatal("no error for a target that refuses connections")
	}
}
