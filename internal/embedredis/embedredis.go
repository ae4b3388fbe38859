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
//
// It listens on loopback, which every local user can reach, so it requires
// a password drawn from crypto/rand at each start: a local process that is
// not Pulse can neither read the aggregates nor publish fake deltas. The
// password lives only in this process's memory; nothing logs it.
package embedredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Server is a running embedded Redis on a loopback port. Safe for
// concurrent use.
type Server struct {
	m        *miniredis.Miniredis
	password string
}

// Start listens on a free loopback port and requires a fresh random
// password (Password) from the first connection on.
func Start() (*Server, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("embedded redis password: %w", err)
	}
	pw := hex.EncodeToString(b[:])
	m := miniredis.NewMiniRedis()
	// Before the listener opens, so no connection ever sees it without.
	m.RequireAuth(pw)
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start embedded redis: %w", err)
	}
	return &Server{m: m, password: pw}, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.m.Addr() }

// Password is what a client must AUTH with. Never log it.
func (s *Server) Password() string { return s.password }

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
