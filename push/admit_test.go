package push

import (
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/coder/websocket"
)

// TestAdmit: a connection refused by Config.Admit gets 429 before the
// upgrade; an admitted one holds its slot until it ends, then releases it.
func TestAdmit(t *testing.T) { synctest.Test(t, testAdmit) }

func testAdmit(t *testing.T) {
	e := newEnv(t)
	e.pipes = true
	var open, limit atomic.Int64
	limit.Store(1)
	_, ts := e.hub(Config{Admit: func(*http.Request) (func(), bool) {
		if open.Add(1) > limit.Load() {
			open.Add(-1)
			return nil, false
		}
		var once atomic.Bool
		return func() {
			if once.CompareAndSwap(false, true) {
				open.Add(-1)
			}
		}, true
	}})
	first, _, err := dial(t, ts, "", nil)
	if err != nil {
		t.Fatalf("first connection: %v", err)
	}
	if _, resp, err := dial(t, ts, "", nil); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second connection: %v %v, want 429", err, resp)
	}
	_ = first.Close(websocket.StatusNormalClosure, "")
	synctest.Wait() // the connection's goroutines have ended
	if n := open.Load(); n != 0 {
		t.Fatalf("slot not released after the connection ended: %d open", n)
	}
	if _, _, err := dial(t, ts, "", nil); err != nil {
		t.Fatalf("connection after release: %v", err)
	}
}
