package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// pulseLike serves a small part of Pulse's push protocol: a snapshot after
// the subscribe, then, once go is closed, three deltas raising one bucket to
// 1, 2 and 3.
func pulseLike(start <-chan struct{}, hosts *sync.Map) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		hosts.Store(host, true)
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		if _, b, err := c.Read(ctx); err != nil || !strings.Contains(string(b), `"op":"subscribe"`) {
			return
		}
		if c.Write(ctx, websocket.MessageText, []byte(`{"op":"snapshot","id":"s1","seq":0,"series":[]}`)) != nil {
			return
		}
		select {
		case <-start:
		case <-ctx.Done():
			return
		}
		for v := 1; v <= 3; v++ {
			msg := fmt.Sprintf(`{"op":"delta","id":"s1","from":%d,"seq":%d,"points":[{"labels":{},"t":1000,"add":1,"value":%d}]}`, v, v, v)
			if c.Write(ctx, websocket.MessageText, []byte(msg)) != nil {
				return
			}
		}
		_, _, _ = c.Read(ctx) // until the client closes
	}))
}

func TestFleet(t *testing.T) {
	tests := []struct {
		name        string
		clients     int
		perSourceIP int
		wantHosts   int
	}{
		{"one", 1, 0, 1},
		{"several over source addresses", 7, 2, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.perSourceIP > 0 {
				// All of 127.0.0.0/8 is loopback on Linux, not everywhere.
				l, err := net.Listen("tcp", "127.0.0.2:0")
				if err != nil {
					t.Skipf("no loopback address 127.0.0.2: %v", err)
				}
				l.Close()
			}
			start := make(chan struct{})
			var hosts sync.Map
			srv := pulseLike(start, &hosts)
			defer srv.Close()
			ctx := context.Background()
			f, err := DialFleet(ctx, FleetConfig{
				URL:         "ws" + strings.TrimPrefix(srv.URL, "http"),
				Clients:     tt.clients,
				Protocol:    PulseProtocol{Site: "s", Metric: "events"},
				PerSourceIP: tt.perSourceIP,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			f.Record(true)
			sent := time.Now()
			close(start)
			for deadline := time.Now().Add(10 * time.Second); f.Behind(3) > 0 && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			if n := f.Behind(3); n != 0 {
				t.Fatalf("%d subscribers never reached total 3", n)
			}
			st := f.Stats()
			if st.Pushes != int64(3*tt.clients) || st.Errors != 0 {
				t.Errorf("stats %+v, want %d pushes and no errors", st, 3*tt.clients)
			}
			lags, missed := f.Lags([]Mark{{sent, 1}, {sent, 3}, {sent, 4}})
			if len(lags) != 2*tt.clients || missed != tt.clients {
				t.Errorf("%d lags, %d missed; want %d and %d", len(lags), missed, 2*tt.clients, tt.clients)
			}
			n := 0
			hosts.Range(func(any, any) bool { n++; return true })
			if n != tt.wantHosts {
				t.Errorf("connections came from %d addresses, want %d", n, tt.wantHosts)
			}
			f.Close()
			f.Close() // twice is fine
		})
	}
}

func TestDialFleetRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_, _, _ = c.Read(r.Context())
		_ = c.Write(r.Context(), websocket.MessageText, []byte(`{"op":"error","id":"s1","code":"unknown_metric","message":"no"}`))
		_, _, _ = c.Read(r.Context())
	}))
	defer srv.Close()
	_, err := DialFleet(context.Background(), FleetConfig{
		URL:      "ws" + strings.TrimPrefix(srv.URL, "http"),
		Clients:  3,
		Protocol: PulseProtocol{Site: "s", Metric: "nope"},
	})
	if err == nil || !strings.Contains(err.Error(), "unknown_metric") {
		t.Fatalf("DialFleet = %v, want the server's unknown_metric error", err)
	}
}
