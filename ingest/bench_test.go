package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/stream"
)

type nopPub struct{}

func (nopPub) Publish(context.Context, []stream.Entry) error { return nil }

// BenchmarkCollect posts bodies of 1 and 50 events through the gin handler
// with a publisher that returns at once: the cost of ingest itself.
func BenchmarkCollect(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			parts := make([]string, n)
			for i := range parts {
				parts[i] = fmt.Sprintf(`{"id":"01JDX6T8Q5ZK3V7M%06d","site":"demo","type":"pageview","ts":1764258000123,`+
					`"url":"https://example.com/pricing?utm_source=news","ref":"https://news.example/item?id=42","uid":"a-91f2c7e0",`+
					`"props":{"plan":"pro","price":49,"target":"#buy-button","beta":true}}`, i)
			}
			body := []byte(strings.Join(parts, ","))
			if n > 1 {
				body = []byte("[" + string(body) + "]")
			}
			benchPost(b, "/v1/collect", body, http.StatusAccepted)
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchPost posts body to path of a handler publishing nowhere, from
// parallel goroutines, and wants status for every request.
func benchPost(b *testing.B, path string, body []byte, status int) {
	r, _ := newServer(b, nopPub{}, Config{})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rd := bytes.NewReader(body)
		for pb.Next() {
			rd.Reset(body)
			req := httptest.NewRequest(http.MethodPost, path, rd)
			req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
			req.Header.Set("User-Agent", chromeUA)
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != status {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}
