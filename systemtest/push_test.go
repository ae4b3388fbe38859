package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pulsehq/pulse/internal/redistest"
)

// wsMessage is any server message of the live protocol.
type wsMessage struct {
	Op     string `json:"op"`
	ID     string `json:"id"`
	Seq    int64  `json:"seq"`
	From   int64  `json:"from"`
	Reset  bool   `json:"reset"`
	Series []struct {
		Labels map[string]string `json:"labels"`
		Points [][2]float64      `json:"points"`
	} `json:"series"`
	Points []struct {
		Labels map[string]string `json:"labels"`
		T      int64             `json:"t"`
		Add    int64             `json:"add"`
		Value  int64             `json:"value"`
	} `json:"points"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// liveTotal follows one subscription: the snapshot, then deltas, checking
// that no entry is skipped, and keeps the bucket values.
type liveTotal struct {
	seq     int64
	buckets map[int64]int64
}

func (l *liveTotal) apply(t *testing.T, m wsMessage) {
	t.Helper()
	switch m.Op {
	case "snapshot":
		l.seq, l.buckets = m.Seq, map[int64]int64{}
		for _, s := range m.Series {
			for _, p := range s.Points {
				l.buckets[int64(p[0])] = int64(p[1])
			}
		}
	case "delta":
		if m.From != l.seq+1 {
			t.Fatalf("delta from %d after seq %d: a gap", m.From, l.seq)
		}
		l.seq = m.Seq
		for _, p := range m.Points {
			if held := l.buckets[p.T]; held+p.Add != p.Value {
				t.Fatalf("delta for %d: held %d + add %d != value %d", p.T, held, p.Add, p.Value)
			}
			l.buckets[p.T] = p.Value
		}
	case "error":
		t.Fatalf("server error: %s %s", m.Code, m.Message)
	}
}

func (l *liveTotal) sum() int64 {
	var n int64
	for _, v := range l.buckets {
		n += v
	}
	return n
}

// TestTwoPushNodes runs one pulse process with ingest and aggregate (and
// push) and a second with only the push role, both on one redis-server.
// A dashboard connected to the push-only node sees every event the other
// node ingested, exactly, with contiguous sequence numbers: deltas travel
// through Redis, so any push node serves any dashboard.
func TestTwoPushNodes(t *testing.T) {
	rdb := redistest.Start(t).URL()
	a := newServer(t, "--redis", rdb)
	b := newServer(t, "--redis", rdb, "--roles", "push")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var clients []*websocket.Conn
	totals := []*liveTotal{{}, {}}
	for _, s := range []*server{a, b} {
		c := s.subscribe(ctx, t, `{"op":"subscribe","id":"s1","site":"two","metric":"events","step":"10s","window":"15m"}`)
		clients = append(clients, c)
	}
	for i, c := range clients {
		totals[i].apply(t, read(ctx, t, c))
	}

	const requests, perRequest = 40, 25
	for r := 0; r < requests; r++ {
		var lines []string
		for i := 0; i < perRequest; i++ {
			lines = append(lines, fmt.Sprintf(`{"id":"tp-%d-%d","site":"two","type":"click","props":{"target":"t%d"}}`, r, i, i%3))
		}
		code, res, err := a.post(ctx, []byte(strings.Join(lines, "\n")), "test")
		if err != nil || code != 202 || res.Accepted != perRequest {
			t.Fatalf("collect: %d %+v %v", code, res, err)
		}
	}
	want := int64(requests * perRequest)
	for i, c := range clients {
		for totals[i].sum() != want {
			totals[i].apply(t, read(ctx, t, c))
		}
		t.Logf("node %d: %d events at seq %d", i, totals[i].sum(), totals[i].seq)
	}
	if totals[0].seq != totals[1].seq {
		t.Errorf("nodes end at seq %d and %d: both follow one delta log", totals[0].seq, totals[1].seq)
	}
}

// subscribe opens a dashboard's WebSocket on s (read token, same-origin)
// and sends the subscribe message sub; the connection is closed when the
// test ends.
func (s *server) subscribe(ctx context.Context, t *testing.T, sub string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, "ws://"+s.addr+"/v1/ws?token="+readToken, &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"http://" + s.addr}},
	})
	if err != nil {
		t.Fatalf("dial %s: %v", s.addr, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if err := c.Write(ctx, websocket.MessageText, []byte(sub)); err != nil {
		t.Fatalf("subscribe on %s: %v", s.addr, err)
	}
	return c
}

func read(ctx context.Context, t *testing.T, c *websocket.Conn) wsMessage {
	t.Helper()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read websocket: %v", err)
	}
	var m wsMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}
