package redisagg

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/push"
)

// applyPageview applies one commit (sequence number seq of shard-1) of one
// pageview of site at ts.
func applyPageview(t *testing.T, st *Store, site string, seq int, ts int64) {
	t.Helper()
	s := strconv.Itoa(seq)
	u := metric.NewUpdate()
	u.Counts[metric.CountKey{Site: site, Metric: "pageviews", Step: "10s", Bucket: ts - ts%10000}]++
	c := &metric.Commit{Shard: "shard-1", First: s, Last: s, Update: u, Pos: metric.Position{Seq: s, DedupFrom: s}}
	if err := st.Apply(context.Background(), c); err != nil {
		t.Fatalf("apply %s: %v", s, err)
	}
}

// TestIdleTTL: every apply gives a site's checkpoint and its metric's delta
// counter and log the idle TTL; a negative one leaves them without expiry.
func TestIdleTTL(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		name   string
		ttl    time.Duration
		lo, hi time.Duration // the PTTL the keys must have; -1: none
	}{
		{name: "default", ttl: 0, lo: DefaultIdleTTL - time.Minute, hi: DefaultIdleTTL},
		{name: "an hour", ttl: time.Hour, lo: time.Hour - time.Minute, hi: time.Hour},
		{name: "never", ttl: -1, lo: -1, hi: -1},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := New(rdb, cat, Config{Namespace: "idle" + strconv.Itoa(i), IdleTTL: tc.ttl})
			applyPageview(t, st, "quiet", 1, time.Now().UnixMilli())
			k := KeysFor("idle" + strconv.Itoa(i))
			for _, key := range []string{k.checkpoint("quiet"), k.deltaSeq("quiet", "pageviews"), k.DeltaLog("quiet", "pageviews")} {
				d, err := rdb.PTTL(ctx, key).Result()
				if err != nil {
					t.Fatal(err)
				}
				if tc.lo < 0 && d != -1 || tc.lo >= 0 && (d < tc.lo || d > tc.hi) {
					t.Errorf("%s: PTTL %s, want in [%s, %s] (-1: none)", key, d, tc.lo, tc.hi)
				}
			}
		})
	}
}

// TestResumeAfterIdleExpiry: once a quiet site's delta log expired, its
// counter restarts at 1; a dashboard that resumes with the seq it held
// before (higher than the new head) gets a reset snapshot of the new
// state, never the new log's entries as if they followed its seq.
func TestResumeAfterIdleExpiry(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := New(rdb, cat, Config{IdleTTL: 300 * time.Millisecond})
	hub := push.New(NewSource(srv.Client(t), st), push.Config{Catalog: cat})
	done := make(chan error, 1)
	hctx, stop := context.WithCancel(ctx)
	go func() { done <- hub.Run(hctx) }()
	defer func() { stop(); <-done }()
	ts := httptest.NewServer(hub)
	defer ts.Close()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/ws"

	now := time.Now().UnixMilli()
	seq := 0
	for range 5 {
		seq++
		applyPageview(t, st, "demo", seq, now)
	}
	first := subscribeOnce(ctx, t, url, nil)
	if first.Seq != 5 || first.total != 5 {
		t.Fatalf("first snapshot: seq %d, total %d; want 5 and 5", first.Seq, first.total)
	}
	// The site goes quiet past the idle TTL: its keys expire.
	k := KeysFor("v1")
	for {
		n, err := rdb.Exists(ctx, k.checkpoint("demo"), k.deltaSeq("demo", "pageviews"), k.DeltaLog("demo", "pageviews")).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the idle keys never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range 2 {
		seq++
		applyPageview(t, st, "demo", seq, now)
	}
	if head, err := NewSource(rdb, st).Last(ctx, "demo", "pageviews"); err != nil || head != 2 {
		t.Fatalf("head of the new log: %d %v, want 2 (the counter restarted)", head, err)
	}
	since := first.Seq
	again := subscribeOnce(ctx, t, url, &since)
	if again.Op != "snapshot" || !again.Reset || again.Seq != 2 || again.total != 7 {
		t.Errorf("resume with since %d: %s reset=%v seq %d total %d; want a reset snapshot, seq 2, total 7",
			since, again.Op, again.Reset, again.Seq, again.total)
	}
}

// answer is the first message of a subscription, with its 10s total summed.
type answer struct {
	Op     string `json:"op"`
	Seq    int64  `json:"seq"`
	Reset  bool   `json:"reset"`
	Series []struct {
		Labels map[string]string `json:"labels"`
		Points [][2]int64        `json:"points"`
	} `json:"series"`
	total int64
}

// subscribeOnce opens a connection, subscribes to demo's pageviews
// (resuming from since when not nil), reads the first answer and closes.
func subscribeOnce(ctx context.Context, t *testing.T, url string, since *int64) answer {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(-1)
	sub := map[string]any{"op": "subscribe", "id": "s", "site": "demo", "metric": "pageviews", "step": "10s", "window": "15m"}
	if since != nil {
		sub["since"] = *since
	}
	b, _ := json.Marshal(sub)
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	_, data, err := ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var a answer
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	for _, s := range a.Series {
		for _, p := range s.Points {
			a.total += p[1]
		}
	}
	return a
}
