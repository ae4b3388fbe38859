package systemtest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pulsehq/pulse/internal/redistest"
)

var chaosFor = flag.Duration("chaos", 0, "run TestChaos, injecting faults for this long (scripts/chaos.sh, make chaos)")

// chaosFaults counts the faults injected, by kind, in table order.
type chaosFaults struct {
	kill, redisRestart, redisPause, saturate, stalled atomic.Int64
	refused                                           atomic.Int64 // 503s the bursts met
	hostile, hostile4xx                               atomic.Int64 // hostile requests sent, and answered 4xx
}

// TestChaos runs pulse serve (all roles, redis-server with AOF, a small
// ingest admission limit) under load while three injectors run at once:
// one SIGKILLs the server, kills and restarts redis-server, or pauses it
// (SIGSTOP) for seconds; one saturates the stream with bursts (503s with
// Retry-After, resent) and opens WebSocket clients that subscribe and
// never read; a hostile sender (sendHostile) sends what attackers do. Then it waits for the aggregates, prints the table of
// scripts/chaos.sh, and fails unless every aggregate equals the ground
// truth and the events counted equal the events acknowledged.
//
// It runs only with -chaos=DURATION: the single fault tests cover each
// fault in the ordinary suite.
func TestChaos(t *testing.T) {
	if *chaosFor <= 0 {
		t.Skip("chaos run: go test ./systemtest -run TestChaos -chaos=90s (make chaos)")
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PULSE_CHAOS_SEED"); v != "" {
		fmt.Sscan(v, &seed)
	}
	t.Logf("seed %d (PULSE_CHAOS_SEED=%d repeats its random choices)", seed, seed)
	rs := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	s := newServer(t, "--redis", rs.URL(), "--max-inflight", "500", "--rate-ip", "-1", "--rate-site", "-1",
		"--trusted-proxies", trustedLoopbackGW)
	srv := func() *server { return s }
	ctx, cancel := context.WithTimeout(context.Background(), *chaosFor+2*time.Minute)
	defer cancel()
	now := time.Now()
	tr := newTruth()
	var f chaosFaults

	base := startLoad(ctx, t, srv, tr, now, loadConfig{Seed: seed, Workers: 3, Resend: 5, IDPrefix: "ch"})
	end := time.Now().Add(*chaosFor)
	var wg sync.WaitGroup
	var stalled []*websocket.Conn
	var stalledMu sync.Mutex
	defer func() {
		for _, c := range stalled {
			c.CloseNow()
		}
	}()

	// Process and Redis faults, one at a time.
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(seed, 1))
		for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
			time.Sleep(time.Duration(500+r.IntN(1500)) * time.Millisecond)
			switch i % 3 {
			case 0:
				s.stop(syscall.SIGKILL)
				s.run()
				f.kill.Add(1)
			case 1:
				rs.Kill()
				time.Sleep(time.Duration(500+r.IntN(2000)) * time.Millisecond)
				rs.Restart(t)
				f.redisRestart.Add(1)
			case 2:
				rs.Pause()
				time.Sleep(time.Duration(2000+r.IntN(2500)) * time.Millisecond)
				rs.Resume()
				f.redisPause.Add(1)
			}
		}
	}()

	// Load faults, meanwhile.
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(seed, 2))
		for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
			time.Sleep(time.Duration(300+r.IntN(1200)) * time.Millisecond)
			if i%2 == 0 {
				burst := startLoad(ctx, t, srv, tr, now, loadConfig{Seed: seed + uint64(i), Workers: 24, Events: 250, Pause: -1,
					IDPrefix: fmt.Sprintf("burst%d", i)})
				deadline := time.Now().Add(5 * time.Second)
				for burst.refused.Load() < 5 && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				if err := burst.Stop(); err != nil {
					t.Errorf("burst: %v", err)
				}
				f.saturate.Add(1)
				f.refused.Add(burst.refused.Load())
				continue
			}
			c, err := stallClient(ctx, s)
			if err != nil {
				continue // the server is down for a kill: try again later
			}
			stalledMu.Lock()
			stalled = append(stalled, c)
			stalledMu.Unlock()
			f.stalled.Add(1)
		}
	}()
	// A hostile sender, meanwhile: nothing it sends may cost an
	// acknowledged event or change an aggregate of the good sites.
	wg.Add(1)
	go func() {
		defer wg.Done()
		sendHostile(ctx, srv, seed, end, &f)
	}()
	wg.Wait()
	if err := base.Stop(); err != nil {
		t.Fatal(err)
	}

	waitFor(ctx, t, "/readyz ready after the faults", func() bool { return readyz(t, s) == http.StatusOK })
	var diffs string
	var got int64
	for {
		var err error
		diffs, err = checkAll(ctx, t, s, tr, now)
		if err == nil && diffs == "" {
			if got, err = counted(ctx, s, now); err == nil && got == int64(tr.size()) {
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	acked := int64(tr.size())
	var b strings.Builder
	fmt.Fprintf(&b, "\nchaos: %s of faults, seed %d\n", *chaosFor, seed)
	fmt.Fprintf(&b, "  %-44s %10s\n", "fault", "injected")
	for _, row := range []struct {
		name string
		n    int64
	}{
		{"SIGKILL of pulse serve (restarted)", f.kill.Load()},
		{"redis-server killed, restarted (AOF)", f.redisRestart.Load()},
		{"redis-server paused 2-4.5s (SIGSTOP)", f.redisPause.Load()},
		{fmt.Sprintf("stream saturated (%d requests 503'd, resent)", f.refused.Load()+base.refused.Load()), f.saturate.Load()},
		{"stalled WebSocket clients (never read)", f.stalled.Load()},
		{fmt.Sprintf("hostile requests (%d answered 4xx)", f.hostile4xx.Load()), f.hostile.Load()},
	} {
		fmt.Fprintf(&b, "  %-44s %10d\n", row.name, row.n)
	}
	fmt.Fprintf(&b, "  %-44s %10d\n", "events acknowledged (202, distinct ids)", acked)
	fmt.Fprintf(&b, "  %-44s %10d\n", "events counted (events + bots, step 1d)", got)
	fmt.Fprintf(&b, "  %-44s %10d\n", "difference", acked-got)
	exact := "exact"
	if diffs != "" {
		exact = "DIFFERENT"
	}
	fmt.Fprintf(&b, "  %-44s %10s\n", "every metric, step, dimension vs truth", exact)
	fmt.Print(b.String())
	if acked-got != 0 || diffs != "" {
		t.Fatalf("acknowledged %d, counted %d; aggregates: %s", acked, got, diffs)
	}
	if f.kill.Load() == 0 || f.saturate.Load() == 0 {
		t.Fatalf("too short a run to inject every fault (-chaos=%s)", *chaosFor)
	}
}

// sendHostile sends, until end, what an anonymous attacker would: events
// of made-up sites, client timestamps from 1970 to 3000, distinct 2 KB
// paths, malformed and oversized bodies, a gzip bomb, a forged origin on
// a keyed site. It sends them for sites other than the truth's, and counts
// what it sent and the 4xx answers; answers while the server is down for
// a kill are simply lost, as an attacker's would be.
func sendHostile(ctx context.Context, srv func() *server, seed uint64, end time.Time, f *chaosFaults) {
	r := rand.New(rand.NewPCG(seed, 3))
	bomb := gz(bytes.Repeat([]byte(" "), 4<<20))
	kinds := []func(i int) hostileCase{
		func(i int) hostileCase { // made-up sites, many per request
			var b strings.Builder
			for j := range 100 {
				fmt.Fprintf(&b, `{"id":"x%d","site":"junk%d-%d","type":"pageview"}`+"\n", j, i, j)
			}
			return hostileCase{body: []byte(b.String())}
		},
		func(i int) hostileCase { // client timestamps across the millennia
			var b strings.Builder
			for j := range 100 {
				ts := 1 + r.Int64N(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
				fmt.Fprintf(&b, `{"id":"ts%d-%d","site":"hostile","type":"pageview","ts":%d}`+"\n", i, j, ts)
			}
			return hostileCase{body: []byte(b.String())}
		},
		func(i int) hostileCase { // distinct long paths
			var b strings.Builder
			for j := range 50 {
				fmt.Fprintf(&b, `{"id":"lp%d-%d","site":"hostile","type":"pageview","url":"https://h.test/%d-%d/%s"}`+"\n", i, j, i, j, strings.Repeat("p", 2000))
			}
			return hostileCase{body: []byte(b.String())}
		},
		func(int) hostileCase { return hostileCase{body: []byte(`{"id":"x","site":`)} },
		func(int) hostileCase { return hostileCase{body: bytes.Repeat([]byte(" "), 1<<20+1)} },
		func(int) hostileCase {
			return hostileCase{hdr: map[string]string{"Content-Encoding": "gzip"}, body: bomb}
		},
	}
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		time.Sleep(time.Duration(20+r.IntN(80)) * time.Millisecond)
		tc := kinds[r.IntN(len(kinds))](i)
		tc.hdr = maps.Clone(tc.hdr)
		if tc.hdr == nil {
			tc.hdr = map[string]string{}
		}
		tc.hdr["X-Forwarded-For"] = fmt.Sprintf("203.0.113.%d", 1+r.IntN(200))
		f.hostile.Add(1)
		if status, _, _, err := srv().do(ctx, tc); err == nil && status >= 400 && status < 500 {
			f.hostile4xx.Add(1)
		}
	}
}

// stallClient opens a WebSocket to s with a tiny receive buffer, subscribes
// to wide grouped series (large snapshots, many points per delta) and never
// reads: the server must keep its memory bounded (merged deltas, resets,
// then a slow-consumer close) and go on serving everyone else.
func stallClient(ctx context.Context, s *server) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, _, err := websocket.Dial(dctx, "ws://"+s.addr+"/v1/ws?token="+readToken, &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"http://" + s.addr}},
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}},
	})
	if err != nil {
		return nil, err
	}
	subs := []struct{ metric, by string }{
		{"pageviews", "path"}, {"pageviews", "referrer"}, {"pageviews", "device"},
		{"clicks", "path"}, {"clicks", "target"}, {"events", "type"},
	}
	for i, sb := range subs {
		for _, site := range sites {
			sub := fmt.Sprintf(`{"op":"subscribe","id":"s%d-%s","site":%q,"metric":%q,"step":"10s","window":"6h","group_by":[%q]}`, i, site, site, sb.metric, sb.by)
			if err := c.Write(dctx, websocket.MessageText, []byte(sub)); err != nil {
				c.CloseNow()
				return nil, err
			}
		}
	}
	return c, nil
}
