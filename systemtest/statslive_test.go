package systemtest

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// statsLive is the random Stats API queries of TestStatsAPI subscribed
// live over /v1/ws: the fold of each (its snapshot with every delta
// applied) must equal POST /v1/stats of the same body once traffic stops.
type statsLive struct {
	bodies map[string]string // id -> query body
	folds  map[string]*liveFold
	msgs   chan liveQueryMsg
}

// maxLiveStats bounds the queries subscribed: a node runs at most 256
// distinct live queries, a connection holds 32 subscriptions.
const maxLiveStats = 160

// subscribeStatsQueries subscribes the queries with absolute ranges (a
// range ending at now moves between the fold and the REST answer), up to
// maxLiveStats, 32 to a connection.
func subscribeStatsQueries(ctx context.Context, t *testing.T, s *server, queries []statsQuery) *statsLive {
	t.Helper()
	l := &statsLive{bodies: map[string]string{}, folds: map[string]*liveFold{}, msgs: make(chan liveQueryMsg, 4096)}
	var subs []string
	for i, q := range queries {
		if q.relative() || len(subs) == maxLiveStats {
			continue
		}
		id := fmt.Sprintf("q%d", i)
		msg := fmt.Sprintf(`{"op":"subscribe","id":%q,"query":%s}`, id, q.body())
		if len(msg) > 64<<10 { // a live query's body is at most 64 KiB
			continue
		}
		l.bodies[id] = string(q.body())
		l.folds[id] = &liveFold{}
		subs = append(subs, msg)
	}
	// Cleanups run last first: stop forwarding, then (liveReader's) close
	// each connection, then wait for the forwarders, which drain their
	// reader until it closes.
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	stop := make(chan struct{})
	for start := 0; start < len(subs); start += 32 {
		batch := subs[start:min(start+32, len(subs))]
		c := s.subscribe(ctx, t, batch[0])
		for _, m := range batch[1:] {
			if err := c.Write(ctx, 1, []byte(m)); err != nil {
				t.Fatalf("subscribe: %v", err)
			}
		}
		l.forward(&wg, liveReader(t, c), stop)
	}
	t.Cleanup(func() { close(stop) })
	t.Logf("%d of %d queries subscribed live over %d connections", len(subs), len(queries), (len(subs)+31)/32)
	return l
}

// settle applies messages until none came for a second and then compares
// every fold with POST /v1/stats of its body; it keeps going until all
// agree or ctx ends, and reports the ones that never did.
func (l *statsLive) settle(ctx context.Context, t *testing.T, s *server) {
	t.Helper()
	deltas := 0
	for {
		select {
		case m := <-l.msgs:
			f := l.folds[m.ID]
			if f == nil {
				t.Fatalf("live message of unknown id %q: %+v", m.ID, m)
			}
			if m.Op == "delta" {
				deltas++
			}
			f.apply(t, m)
			continue
		case <-time.After(time.Second):
		}
		var differ []string
		for id, body := range l.bodies {
			want, meta := s.postStatsFold(ctx, t, body)
			if f := l.folds[id]; !maps.Equal(f.rows, want) || f.meta != meta {
				differ = append(differ, fmt.Sprintf("%s %s:\n fold %v %s\n REST %v %s", id, body, f.rows, f.meta, want, meta))
			}
		}
		if len(differ) == 0 {
			t.Logf("%d live queries (%d deltas) fold to their REST answers", len(l.bodies), deltas)
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d live queries differ from their REST answers once traffic stopped; first:\n%s", len(differ), len(l.bodies), differ[0])
		}
	}
}

// sendStatsWave sends a second wave of events (with retries) from new
// senders while live queries are subscribed; no server is killed.
func sendStatsWave(ctx context.Context, t *testing.T, s *server, led *statsLedger, tr statsTraffic) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := statsWorkers; w < statsWorkers+2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := statsWorker(ctx, s, led, rand.New(rand.NewPCG(statsSeed, uint64(w))), w, tr); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// forward passes the messages of in to l until stop is closed, on a
// goroutine wg waits for; it drains in until in closes.
func (l *statsLive) forward(wg *sync.WaitGroup, in <-chan liveQueryMsg, stop <-chan struct{}) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m := range in {
			select {
			case l.msgs <- m:
			case <-stop:
			}
		}
	}()
}
