package sourcetest

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pulsehq/pulse/push"
)

// FanoutClients is how many WebSocket clients Fanout subscribes.
const FanoutClients = 1000

// Fanout benchmarks a hub over src end to end: FanoutClients in-process
// WebSocket clients subscribe to pageviews of site demo by path; each
// iteration publishes one commit (publish, one log entry). It reports delta
// messages and log entries delivered per second over all clients (a merged
// delta covers several entries) and the p50/p99 latency from the start of a
// publish to a client holding its entry. The same code measures every
// source, so their figures compare.
func Fanout(b *testing.B, src push.Source, cfg push.Config, publish func(path string)) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	h := push.New(src, cfg)
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() { cancel(); <-done }()
	ts := httptest.NewServer(h)
	defer ts.Close()

	publish("/a")
	start, err := src.Last(ctx, "demo", "pageviews")
	if err != nil {
		b.Fatal(err)
	}
	f := &fanout{applied: map[int64]time.Time{}, start: start, ready: make(chan struct{}, FanoutClients)}
	f.final.Store(1 << 62)
	var wg sync.WaitGroup
	for range FanoutClients {
		ws := subscribe(ctx, b, "ws"+strings.TrimPrefix(ts.URL, "http")+"/v1/ws")
		defer ws.CloseNow()
		wg.Go(func() { f.read(ctx, b, ws) })
	}
	for range FanoutClients {
		<-f.ready
	}
	b.ResetTimer()
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		f.mu.Lock()
		f.applied[start+1+int64(i)] = time.Now()
		f.mu.Unlock()
		publish("/p" + strconv.Itoa(i%5))
	}
	f.final.Store(start + int64(b.N))
	publish("/end") // wakes clients that already hold the last entry
	wg.Wait()
	f.report(b, time.Since(t0))
}

// fanout is what the clients of one Fanout share.
type fanout struct {
	start   int64
	ready   chan struct{}
	final   atomic.Int64
	msgs    atomic.Int64
	entries atomic.Int64

	mu      sync.Mutex
	applied map[int64]time.Time // entry n -> publish start
	lat     []time.Duration
}

// subscribe dials the hub, retrying while it answers 503 (Run not started
// yet), and subscribes.
func subscribe(ctx context.Context, b *testing.B, url string) *websocket.Conn {
	sub := []byte(`{"op":"subscribe","id":"s","site":"demo","metric":"pageviews","step":"10s","window":"15m","group_by":["path"]}`)
	for {
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil && strings.Contains(err.Error(), "503") {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		ws.SetReadLimit(-1)
		if err := ws.Write(ctx, websocket.MessageText, sub); err != nil {
			b.Fatal(err)
		}
		return ws
	}
}

// read follows one client's subscription until it holds the final entry,
// checking that deltas are gapless.
func (f *fanout) read(ctx context.Context, b *testing.B, ws *websocket.Conn) {
	var seq int64
	var local []time.Duration
	defer func() { f.mu.Lock(); f.lat = append(f.lat, local...); f.mu.Unlock() }()
	for seq < f.final.Load() {
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
			f.ready <- struct{}{}
		case "delta":
			if m.From != seq+1 {
				b.Errorf("gap: %d after %d", m.From, seq)
				return
			}
			seq = m.Seq
			if m.From > f.start {
				f.mu.Lock()
				at, ok := f.applied[m.From]
				f.mu.Unlock()
				if ok {
					local = append(local, time.Since(at))
				}
				f.msgs.Add(1)
				f.entries.Add(m.Seq - m.From + 1)
			}
		}
	}
}

func (f *fanout) report(b *testing.B, el time.Duration) {
	b.StopTimer()
	slices.Sort(f.lat)
	if len(f.lat) > 0 {
		b.ReportMetric(float64(f.msgs.Load())/el.Seconds(), "msgs/s")
		b.ReportMetric(float64(f.entries.Load())/el.Seconds(), "entries/s")
		b.ReportMetric(float64(f.lat[len(f.lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(f.lat[len(f.lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.Logf("%d clients, %d entries, %d messages, %s", FanoutClients, b.N, f.msgs.Load(), el)
}
