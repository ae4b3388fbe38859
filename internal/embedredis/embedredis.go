// Package embedredis is the in-process Redis-protocol server of the
// embedded mode (pulse serve --redis embedded), so that exactly the
// production go-redis code path (Lua apply, HyperLogLog, streams, pub/sub)
// runs on one machine with nothing installed.
//
// It keeps no data across restarts. The aggregates are rebuilt from the
// retained local stream at start instead: the stream is the source of truth
// (Kappa), the rebuild runs the same code as live aggregation and gives the
// same numbers exactly, and it needs no second persistence format whose
// consistency with the stream positions would have to be proven. The cost is
// start-up time proportional to the retained stream; the local stream's
// retention defaults to the longest aggregate retention so nothing a query
// can see is lost. Production uses a real Redis (with AOF) and resumes from
// the stored positions instead.
package embedredis

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Server is a running embedded Redis on a loopback port. Safe for
// concurrent use.
type Server struct {
	m *miniredis.Miniredis
}

// Start listens on a free loopback port.
func Start() (*Server, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start embedded redis: %w", err)
	}
	return &Server{m: m}, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.m.Addr() }

// Run makes keys expire on the wall clock until ctx ends. miniredis only
// moves TTLs when told; its own per-command clock mode walks every key on
// every command, so a sweep once a second is far cheaper.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			s.m.FastForward(now.Sub(last))
			last = now
		}
	}
}

// Close stops the server; its data is gone.
func (s *Server) Close() { s.m.Close() }
