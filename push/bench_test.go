package push

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkFanout: 1,000 in-process WebSocket clients on one topic; each
// iteration applies one batch through the real store (one delta log entry).
// Reported: delta messages delivered per second over all clients, log entries
// delivered per second (a merged delta covers several), and the p50/p99
// latency from the start of the apply to a client holding the entry.
func BenchmarkFanout(b *testing.B) {
	const clients = 1000
	e := newEnv(b)
	_, ts := e.hub(Config{})
	now := time.Now().UnixMilli()
	e.apply(now, 1, "/a")
	start := e.head()

	var mu sync.Mutex
	applied := map[int64]time.Time{} // n -> apply start
	var lat []time.Duration
	var msgs, entries atomic.Int64
	final := atomic.Int64{}
	final.Store(1 << 62)

	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		ws, _, err := dial(b, ts, "", nil)
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = ws
		msg, _ := json.Marshal(map[string]any{"op": "subscribe", "id": "s", "site": "demo", "metric": "pageviews", "step": "10s", "window": "15m", "group_by": []string{"path"}})
		if err := ws.Write(ctx, websocket.MessageText, msg); err != nil {
			b.Fatal(err)
		}
	}
	ready := make(chan struct{}, clients)
	for _, ws := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seq int64
			var local []time.Duration
			defer func() {
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			}()
			for seq < final.Load() {
				_, data, err := ws.Read(ctx)
				if err != nil {
					b.Errorf("client read: %v", err)
					return
				}
				var m struct {
					Op        string
					From, Seq int64
				}
				if err := json.Unmarshal(data, &m); err != nil {
					b.Errorf("decode: %v", err)
					return
				}
				switch m.Op {
				case "snapshot":
					seq = m.Seq
					ready <- struct{}{}
				case "delta":
					if m.From != seq+1 {
						b.Errorf("gap: %d after %d", m.From, seq)
						return
					}
					seq = m.Seq
					if m.From > start {
						mu.Lock()
						at, ok := applied[m.From]
						mu.Unlock()
						if ok {
							local = append(local, time.Since(at))
						}
						msgs.Add(1)
						entries.Add(m.Seq - m.From + 1)
					}
				}
			}
		}()
	}
	for range clients {
		<-ready
	}
	ps := paths(5)
	b.ResetTimer()
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		n := start + 1 + int64(i)
		mu.Lock()
		applied[n] = time.Now()
		mu.Unlock()
		e.apply(now, 1, ps[i%5])
	}
	final.Store(start + int64(b.N))
	e.apply(now, 1, "/end") // wakes clients that already hold the last entry
	wg.Wait()
	el := time.Since(t0)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(msgs.Load())/el.Seconds(), "msgs/s")
		b.ReportMetric(float64(entries.Load())/el.Seconds(), "entries/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.Log(fmt.Sprintf("%d clients, %d entries, %d messages, %s", clients, b.N, msgs.Load(), el))
}
