package redisagg

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

	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/push"
)

// BenchmarkFanoutRedis is push's BenchmarkFanout end to end over Redis:
// 1,000 in-process WebSocket clients on one topic; each iteration applies
// one batch through the real store, whose delta reaches the hub through
// Source. Reported as there: messages and log entries delivered per second
// over all clients, and the p50/p99 latency from the start of the apply.
func BenchmarkFanoutRedis(b *testing.B) {
	const clients = 1000
	srv := redistest.Start(b)
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		b.Fatal(err)
	}
	st := New(srv.Client(b), cat, Config{})
	h := push.New(NewSource(srv.Client(b), st), push.Config{Catalog: cat})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() { cancel(); <-done }()
	ts := httptest.NewServer(h)
	defer ts.Close()

	now := time.Now().UnixMilli()
	var seq atomic.Int64
	apply := func(path string) {
		s := strconv.FormatInt(seq.Add(1), 10)
		u := metric.NewUpdate()
		for _, step := range cat.Steps {
			u.Counts[metric.CountKey{Site: "demo", Metric: "pageviews", Step: step.Name, Bucket: step.Bucket(now)}]++
			u.Counts[metric.CountKey{Site: "demo", Metric: "pageviews", Step: step.Name, Bucket: step.Bucket(now), Dim: "path", Value: path}]++
		}
		if err := st.Apply(context.Background(), &metric.Commit{Shard: "shard-1", First: s, Last: s, Update: u, Pos: metric.Position{Seq: s, DedupFrom: s}}); err != nil {
			b.Fatal(err)
		}
	}
	apply("/a")
	start := seq.Load() // one entry per apply

	var mu sync.Mutex
	applied := map[int64]time.Time{}
	var lat []time.Duration
	var msgs, entries atomic.Int64
	var final atomic.Int64
	final.Store(1 << 62)
	ready := make(chan struct{}, clients)
	var wg sync.WaitGroup
	sub := []byte(`{"op":"subscribe","id":"s","site":"demo","metric":"pageviews","step":"10s","window":"15m","group_by":["path"]}`)
	for range clients {
		var ws *websocket.Conn
		for {
			ws, _, err = websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/v1/ws", nil)
			if err == nil || !strings.Contains(err.Error(), "503") {
				break
			}
			time.Sleep(time.Millisecond) // Run not started yet
		}
		if err != nil {
			b.Fatal(err)
		}
		ws.SetReadLimit(-1)
		defer ws.CloseNow()
		if err := ws.Write(ctx, websocket.MessageText, sub); err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			var seq int64
			var local []time.Duration
			defer func() { mu.Lock(); lat = append(lat, local...); mu.Unlock() }()
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
		})
	}
	for range clients {
		<-ready
	}
	b.ResetTimer()
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		mu.Lock()
		applied[start+1+int64(i)] = time.Now()
		mu.Unlock()
		apply("/p" + strconv.Itoa(i%5))
	}
	final.Store(start + int64(b.N))
	apply("/end") // wakes clients that already hold the last entry
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
}
