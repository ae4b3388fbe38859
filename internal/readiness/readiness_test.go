package readiness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// app routes as pulse's router does: /healthz and /readyz to the gate.
func app(g *Gate) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", g.Healthz)
	mux.HandleFunc("/readyz", g.Readyz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "app "+r.URL.Path) })
	return mux
}

func TestGate(t *testing.T) {
	open := func(g *Gate) { g.Serve(app(g), nil) }
	cases := []struct {
		name  string
		setup func(g *Gate)
		path  string
		code  int
		body  string
	}{
		{"starting healthz", func(*Gate) {}, "/healthz", 200, "ok\n"},
		{"starting readyz", func(*Gate) {}, "/readyz", 503, "starting\n"},
		{"starting route", func(*Gate) {}, "/v1/collect", 503, "starting\n"},
		{"open route", open, "/v1/collect", 200, "app /v1/collect"},
		{"open readyz ready", open, "/readyz", 200, "ready\n"},
		{"open readyz check fails", func(g *Gate) {
			g.Serve(app(g), func(context.Context) string { return "redis: down" })
		}, "/readyz", 503, "redis: down\n"},
		{"draining readyz", func(g *Gate) { open(g); g.Drain() }, "/readyz", 503, "shutting down\n"},
		{"draining route still served", func(g *Gate) { open(g); g.Drain() }, "/v1/collect", 200, "app /v1/collect"},
		{"draining healthz", func(g *Gate) { open(g); g.Drain() }, "/healthz", 200, "ok\n"},
		{"draining while starting", func(g *Gate) { g.Drain() }, "/readyz", 503, "shutting down\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := New(quiet())
			tc.setup(g)
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if code, body := rec.Code, rec.Body.String(); code != tc.code || body != tc.body {
				t.Errorf("GET %s: %d %q, want %d %q", tc.path, code, body, tc.code, tc.body)
			}
			// Draining, every answer closes its connection.
			if got, want := rec.Header().Get("Connection"), map[bool]string{true: "close"}[g.drain.Load()]; got != want {
				t.Errorf("GET %s: Connection %q, want %q", tc.path, got, want)
			}
		})
	}
}

func TestRetryBacksOffAndSaysWhatItWaitsFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(quiet())
		refused := fmt.Errorf("ping: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
		start := time.Now()
		var at []time.Duration
		var readyz []string
		err := g.Retry(t.Context(), "redis", func(context.Context) error {
			at = append(at, time.Since(start))
			_, body := get(t, g, "/readyz")
			readyz = append(readyz, body)
			if len(at) < 9 {
				return refused
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []time.Duration{0, 100, 300, 700, 1500, 3100, 6300, 11300, 16300}
		for i := range want {
			want[i] *= time.Millisecond
		}
		if fmt.Sprint(at) != fmt.Sprint(want) {
			t.Errorf("attempts at %v, want %v", at, want)
		}
		if readyz[0] != "waiting for redis\n" || !strings.HasPrefix(readyz[1], "waiting for redis: ping: dial tcp: connection refused") {
			t.Errorf("/readyz said %q", readyz[:2])
		}
		if code, body := get(t, g, "/readyz"); code != 503 || body != "starting\n" {
			t.Errorf("/readyz after the dependency came: %d %q", code, body)
		}
	})
}

func TestRetryStops(t *testing.T) {
	permanent := errors.New("--redis: WRONGPASS invalid username-password pair")
	cases := []struct {
		name   string
		err    error
		cancel bool // cancel ctx during the first wait
		want   error
		tries  int
	}{
		{"permanent error at once", permanent, false, permanent, 1},
		{"canceled while waiting", io.EOF, true, context.Canceled, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tc.cancel {
					time.AfterFunc(50*time.Millisecond, cancel)
				}
				tries := 0
				err := New(quiet()).Retry(ctx, "x", func(context.Context) error { tries++; return tc.err })
				if !errors.Is(err, tc.want) || tries != tc.tries {
					t.Errorf("Retry = %v after %d tries, want %v after %d", err, tries, tc.want, tc.tries)
				}
			})
		})
	}
}

func TestTransient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	_, dialErr := net.Dial("tcp", closed)

	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	reply := func(msg string) error {
		m.SetError(msg)
		defer m.SetError("")
		return fmt.Errorf("load namespace registry: %w", rdb.Get(t.Context(), "k").Err())
	}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"connection refused", fmt.Errorf("ping: %w", dialErr), true},
		{"timeout", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"eof", fmt.Errorf("x: %w", io.EOF), true},
		{"cluster down", reply("CLUSTERDOWN The cluster is down"), true},
		{"cluster not formed (go-redis)", fmt.Errorf("load namespace registry: %w", errors.New("redis: cluster has no nodes")), true},
		{"loading", reply("LOADING Redis is loading the dataset in memory"), true},
		{"wrong password", reply("WRONGPASS invalid username-password pair"), false},
		{"plain error naming a reply", errors.New("CLUSTERDOWN in a message, not a reply"), false},
		{"bad config", errors.New(`--stream: "x" is not local or kinesis://NAME`), false},
		{"canceled", context.Canceled, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Transient(tc.err); got != tc.want {
				t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
