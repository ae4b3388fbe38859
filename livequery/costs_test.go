package livequery

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"

	"github.com/pulsehq/pulse/stats"
)

// benchRows applies n rows over the last 50 minutes: 20 pages, 4
// devices, 3 goals, n/4 visitors.
func (e *env) benchRows(n int) {
	devices := []string{"desktop", "mobile", "tablet", "other"}
	goals := []string{"pageview", "pageview", "signup"}
	for done := 0; done < n; {
		batch := make([]stats.Row, 0, 5000)
		for i := 0; i < 5000 && done < n; i, done = i+1, done+1 {
			batch = append(batch, e.row(done%50, goals[done%3], "/p"+strconv.Itoa(done%20), devices[done%4], uint64(done%(n/4)+1)))
		}
		e.apply(batch...)
	}
}

// TestLiveCosts measures what a live query costs (docs/operations.md's
// threat figures): a recount of 100,000 rows, and the heap of 100
// distinct computations over them. Bounds only, no timing assertion.
func TestLiveCosts(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	const rows = 100_000
	e := newEnv(t, Config{})
	e.benchRows(rows)
	var stops []func()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const comps = 100
	for i := range comps {
		body := e.explicit(fmt.Sprintf(`,"dimensions":["event:page","visit:device"],"filters":[["is_not","event:goal",["x%d"]]]`, i))
		_, stop := e.subscribe(body, -1)
		stops = append(stops, stop)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := e.m.Computations(); n != comps {
		t.Fatalf("%d computations, want %d", n, comps)
	}
	perComp := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / comps
	e.m.mu.Lock()
	var c *computation
	for _, c = range e.m.comps {
		break
	}
	e.m.mu.Unlock()
	c.mu.Lock()
	cost := c.cost
	c.mu.Unlock()
	t.Logf("a live query of 2 dimensions over %d rows: %d KiB of heap; a recount of its range %v (%.0f rows/ms)",
		rows, perComp>>10, cost, float64(rows)/float64(cost.Milliseconds()+1))
	if perComp > 16<<20 {
		t.Errorf("%d bytes per computation over %d rows", perComp, rows)
	}
	for _, s := range stops {
		s()
	}
}
