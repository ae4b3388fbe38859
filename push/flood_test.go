package push

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
)

// scopedTokens grants each token the sites listed; "*" every site.
type scopedTokens map[string][]string

func (s scopedTokens) Read(tok string) bool { _, ok := s[tok]; return ok }

func (s scopedTokens) ReadSite(tok, site string) bool {
	for _, x := range s[tok] {
		if x == "*" || x == site {
			return true
		}
	}
	return false
}

var _ SiteTokenChecker = scopedTokens{}

// TestSiteScope: a token scoped to some sites subscribes to them and gets
// "forbidden" for the others, on a connection that stays open, whether it
// came with ?token= or an auth message.
func TestSiteScope(t *testing.T) {
	e := newEnv(t)
	_, ts := e.hub(Config{Tokens: scopedTokens{"demo-only": {"demo"}, "other-only": {"other"}, "all": {"*"}}})
	now := time.Now().UnixMilli()
	e.apply(now, 2, "/a")
	sub := func(id, site string) map[string]any {
		return map[string]any{"op": "subscribe", "id": id, "site": site, "metric": "pageviews", "step": "10s", "window": "15m"}
	}
	cases := []struct {
		name, query, auth string
		allowed           bool
	}{
		{"query token, own site", "?token=demo-only", "", true},
		{"query token, other site", "?token=other-only", "", false},
		{"auth message, own site", "", "demo-only", true},
		{"auth message, other site", "", "other-only", false},
		{"all sites", "?token=all", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClientAt(t, ts, tc.query)
			if tc.auth != "" {
				c.send(map[string]string{"op": "auth", "token": tc.auth})
			}
			c.send(sub("s", "demo"))
			if !tc.allowed {
				if m := c.expectError(); m.Code != CodeForbidden || m.ID != "s" || m.Message != `this read token does not grant site "demo"` {
					t.Fatalf("got %+v, want forbidden for s", m)
				}
				// Still open, and its own site still works.
				c.send(sub("t", "other"))
				c.until(0, "t")
				return
			}
			c.until(e.head(), "s")
			checkState(t, "s", c.subs["s"].state, e.want("10s", "", now-15*time.Minute.Milliseconds(), now))
		})
	}
}

// TestSubscribeFloods: floods of subscribe/unsubscribe on one connection
// and across connections keep the hub's state bounded (subscriptions and
// topics back to what is live), answer clearly when over a limit, and
// leave another client's view exact.
func TestSubscribeFloods(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		conns int // flooding connections
		pairs int // subscribe+unsubscribe pairs per connection
		subs  int // distinct ids subscribed and kept, per connection
		// what the flooders must see
		limitErrs int  // "limit" errors per connection
		closed    bool // closed with 1008 for the message rate
		live      int  // subscriptions each flooder holds at the end
	}{
		{name: "churn on one connection", cfg: Config{MessageRate: -1}, conns: 1, pairs: 400, live: 1},
		{name: "churn across connections", cfg: Config{MessageRate: -1}, conns: 6, pairs: 100, live: 1},
		{name: "over the subscription cap", cfg: Config{MessageRate: -1, MaxSubsPerConn: 4}, conns: 2, subs: 40, limitErrs: 36, live: 4},
		{name: "over the message rate", cfg: Config{MessageRate: 1, MessageBurst: 30}, conns: 2, pairs: 200, closed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t)
				e.pipes = true
				h, ts := e.hub(tc.cfg)
				now := time.Now().UnixMilli()
				from := now - 15*time.Minute.Milliseconds()
				e.apply(now, 1, "/a")
				obs := newClient(t, ts)
				obs.send(map[string]any{"op": "subscribe", "id": "o", "site": "demo", "metric": "pageviews", "step": "10s", "window": "15m", "group_by": []string{"path"}})
				obs.until(e.head(), "o")

				var target atomic.Int64
				target.Store(math.MaxInt64)
				var wg sync.WaitGroup
				// readUntil reads c on a goroutine of its own until its
				// subscription id is at target, or the connection ends, as
				// a dashboard reads all the time. The observer is read so
				// too: left unread, its writer on the server blocks on the
				// pipe (net.Pipe holds no buffer), and once the bubble has
				// idled 20s the server's ping (15s), not written within
				// 5s, ends the connection.
				readUntil := func(c *client, id string, code *websocket.StatusCode) {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
						defer cancel()
						for {
							if v := c.subs[id]; v != nil && v.seq >= target.Load() {
								return
							}
							if _, err := c.next(ctx); err != nil {
								*code = websocket.CloseStatus(err)
								return
							}
						}
					}()
				}
				var obsCode websocket.StatusCode
				readUntil(obs, "o", &obsCode)
				flooders := make([]*client, tc.conns)
				codes := make([]websocket.StatusCode, tc.conns)
				for i := range flooders {
					flooders[i] = newClient(t, ts)
					readUntil(flooders[i], "final", &codes[i])
				}
				sub := func(id string) map[string]any {
					return map[string]any{"op": "subscribe", "id": id, "site": "demo", "metric": "pageviews", "step": "10s", "window": "15m", "group_by": []string{"path"}}
				}
				write := func(fl *client, v map[string]any) bool {
					b, _ := json.Marshal(v)
					return fl.ws.Write(context.Background(), websocket.MessageText, b) == nil
				}
				for n := 0; n < max(tc.pairs, tc.subs); n++ {
					for _, fl := range flooders {
						if n < tc.pairs {
							// Writes fail once the server closed a flooder: stop it.
							_ = write(fl, sub("s")) && write(fl, map[string]any{"op": "unsubscribe", "id": "s"})
						}
						if n < tc.subs {
							write(fl, sub(fmt.Sprintf("k%d", n)))
						}
					}
					if n%40 == 0 {
						e.apply(now, 1, "/a", fmt.Sprintf("/p%d", n/40%5)) // few paths: a snapshot holds the top 10
					}
				}
				for _, fl := range flooders {
					if tc.subs > 0 {
						write(fl, map[string]any{"op": "unsubscribe", "id": "k0"}) // room for final
					}
					write(fl, sub("final"))
				}
				// The target is set before the commit that makes it: a
				// reader that saw it reached before it was set would wait
				// for a message that never comes, idling the bubble until
				// its 60s ran out (and the unread observer's connection
				// ended meanwhile: "waiting for seq 12 of [o]: ... EOF").
				target.Store(e.head() + 1)
				e.apply(now, 1, "/b")
				if got := e.head(); got != target.Load() {
					t.Fatalf("head %d after one commit, want %d", got, target.Load())
				}
				wg.Wait()
				if obsCode != 0 {
					t.Fatalf("the observer's connection ended (close status %d) before its subscription was at %d", obsCode, target.Load())
				}

				obs.until(e.head(), "o")
				want := e.want("10s", "path", from, now)
				checkState(t, "observer", obs.subs["o"].state, want)
				live := 1 // the observer's
				for i, fl := range flooders {
					if tc.closed {
						if codes[i] != websocket.StatusPolicyViolation {
							t.Errorf("flooder %d: close code %d, want 1008", i, codes[i])
						}
						continue
					}
					checkState(t, fmt.Sprintf("flooder %d", i), fl.subs["final"].state, want)
					limits := 0
					for _, m := range fl.errs {
						if m.Code != CodeLimit {
							t.Errorf("flooder %d: unexpected error %+v", i, m)
						}
						limits++
					}
					if limits != tc.limitErrs {
						t.Errorf("flooder %d: %d limit errors, want %d", i, limits, tc.limitErrs)
					}
					live += tc.live
				}
				if tc.closed && value(h.m.floodCloses) != float64(tc.conns) {
					t.Errorf("flood closes %v, want %d", value(h.m.floodCloses), tc.conns)
				}
				// The closed connections detach on their own goroutines.
				synctest.Wait()
				if got := value(h.m.subscriptions); got != float64(live) {
					t.Errorf("subscriptions %v, want %d", got, live)
				}
				if got := value(h.m.topics); got != 1 {
					t.Errorf("topics %v, want 1 (every subscription is the same key)", got)
				}
				if got := queuedPoints(h); got > h.cfg.SendQueue {
					t.Errorf("a queue holds %d points, cap %d", got, h.cfg.SendQueue)
				}
			})
		})
	}
}
