package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/redistest"
)

// The sites of the Stats API test: the queries ask statsSite; statsNoise
// gets events in the same requests that no answer may count.
const (
	statsSite  = "statsapi"
	statsNoise = "statsnoise"
	statsSeed  = 12
)

// TestStatsAPI sends a few thousand events (paths, hostnames, goals,
// props, referrers, devices, uids, timestamps over the last two days and
// around the last DST changes of Berlin and New York) with client retries
// and two SIGKILLs with resends, then checks random queries of POST
// /v1/stats against the ground truth the test computes from what it sent
// (statstruth_test.go): counts, sums and visitors exact. It then replays
// everything into a new namespace, promotes it, and checks that every
// query answers the same. It runs with a real redis-server (the
// aggregator resumes from the positions committed with the rows) and on
// the embedded defaults (the rows are rebuilt from the stream at each
// start).
func TestStatsAPI(t *testing.T) {
	for _, tc := range []struct {
		name  string
		redis func(t *testing.T) string
	}{
		{"redis-server", func(t *testing.T) string { return redistest.Start(t).URL() }},
		{"embedded", func(*testing.T) string { return "embedded" }},
	} {
		t.Run(tc.name, func(t *testing.T) { runStatsAPI(t, tc.redis(t)) })
	}
}

func runStatsAPI(t *testing.T, redisURL string) {
	began := time.Now()
	now := began
	dsts := []dstChange{lastDSTChange("Europe/Berlin", now), lastDSTChange("America/New_York", now)}
	// Events around the DST changes are weeks old: the allowed lateness
	// and the rows' retention (the 1h step's) reach past them.
	lateness := now.Sub(dsts[0].At).Truncate(time.Hour) + 4*24*time.Hour
	if l := now.Sub(dsts[1].At).Truncate(time.Hour) + 4*24*time.Hour; l > lateness {
		lateness = l
	}
	retentionDays := max(120, int(lateness/(24*time.Hour))+30)
	cfgPath := filepath.Join(t.TempDir(), "metrics.yaml")
	if err := os.WriteFile(cfgPath, []byte(statsMetricsConfig(retentionDays)), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, "--redis", redisURL, "--metrics-config", cfgPath, "--allowed-lateness", lateness.String(),
		"--rate-ip", "-1", "--rate-site", "-1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Logf("seed %d; DST changes %v; --allowed-lateness %v; rows kept %dd", statsSeed, dsts, lateness, retentionDays)

	tr := statsTraffic{now: now, lateness: lateness, dsts: dsts}
	led := sendStatsTraffic(ctx, t, s, &tr)

	queries := genStatsQueries(rand.New(rand.NewPCG(statsSeed, 100)), 300, statsGenConfig{
		Site: statsSite, Now: now, Zones: []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"}, DST: dsts,
	})
	// The same queries live: subscribed between the kills and a second
	// wave of events, whose deltas must fold to the REST answers.
	ws := subscribeStatsQueries(ctx, t, s, queries)
	sendStatsWave(ctx, t, s, led, tr)
	events := led.events()
	waitStatsCounted(ctx, t, s, events)
	ws.settle(ctx, t, s)
	live := checkStatsQueries(ctx, t, s, events, queries)

	if out, err := s.pulse(ctx, "replay", "--namespace", "v2", "--metrics-config", cfgPath, "--promote"); err != nil {
		t.Fatalf("pulse replay: %v\n%s", err, out)
	}
	same, moved := checkStatsReplay(ctx, t, s, events, queries, live)
	t.Logf("%d events sent in %d requests (%d distinct ids, %d counted for %s); %d queries compared with the truth; "+
		"after the replay into v2: %d answered identically, %d relative ranges moved and matched the truth again; wall time %v",
		led.sent, led.posts, len(events), countedRows(events, statsSite), statsSite, len(queries), same, moved, time.Since(began).Round(time.Second))
}

// statsMetricsConfig is the built-in metrics with the default steps but
// for the 1h step's retention, which is how long the Stats API's rows
// are kept.
func statsMetricsConfig(retentionDays int) string {
	return fmt.Sprintf(`builtins: true
steps:
  - {name: 10s, width: 10s, retention: 6h}
  - {name: 1m, width: 1m, retention: 3d}
  - {name: 1h, width: 1h, retention: %dd}
  - {name: 1d, width: 24h, retention: 400d}
`, retentionDays)
}

// statsLedger is what the server acknowledged: the first copy of each
// event id (a retry carries the same content).
type statsLedger struct {
	mu    sync.Mutex
	seen  map[string]bool
	list  []statsEvent
	posts int // requests acknowledged
	sent  int // events in them, copies included
}

func (l *statsLedger) add(evs []statsEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.posts++
	l.sent += len(evs)
	for _, e := range evs {
		if !l.seen[e.ID] {
			l.seen[e.ID] = true
			l.list = append(l.list, e)
		}
	}
}

func (l *statsLedger) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.list)
}

func (l *statsLedger) events() []statsEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]statsEvent(nil), l.list...)
}

// recent is the last n events acknowledged.
func (l *statsLedger) recent(n int) []statsEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]statsEvent(nil), l.list[max(0, len(l.list)-n):]...)
}

const (
	statsWorkers   = 3
	statsPerWorker = 1400
)

// sendStatsTraffic sends the events from statsWorkers senders while this
// goroutine kills the server twice with SIGKILL (at about a third and two
// thirds of the events), restarts it, and resends events that were
// acknowledged before the kill; requests the kill left unanswered are
// resent by server.post.
func sendStatsTraffic(ctx context.Context, t *testing.T, s *server, tr *statsTraffic) *statsLedger {
	t.Helper()
	led := &statsLedger{seen: map[string]bool{}}
	for _, back := range []time.Duration{3, 20, 40} {
		tr.busy = append(tr.busy, tr.now.Add(-back*time.Hour).Truncate(time.Hour))
	}
	var wg sync.WaitGroup
	errs := make(chan error, statsWorkers)
	for w := range statsWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := statsWorker(ctx, s, led, rand.New(rand.NewPCG(statsSeed, uint64(w))), w, *tr); err != nil {
				errs <- err
			}
		}()
	}
	const target = statsWorkers * statsPerWorker
	for _, frac := range []float64{0.3, 0.65} {
		for led.size() < int(frac*target) && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		at := led.size()
		s.stop(syscall.SIGKILL)
		s.run()
		resent := led.recent(80)
		if err := postStatsEvents(ctx, s, led, resent); err != nil {
			t.Fatal(err)
		}
		t.Logf("SIGKILL with %d of about %d events acknowledged; restarted and resent %d acknowledged ones", at, target, len(resent))
		if at >= target {
			t.Errorf("the kill came after the senders finished: nothing was in flight")
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return led
}

// statsWorker sends statsPerWorker events in requests of 1-40 events of
// one User-Agent; a tenth of the events are retries of events it had
// acknowledged (same id and content, in a later request).
func statsWorker(ctx context.Context, s *server, led *statsLedger, r *rand.Rand, w int, tr statsTraffic) error {
	var acked []statsEvent
	seq := 0
	for left := statsPerWorker; left > 0; {
		ua := r.IntN(len(statsUAs) - 1)
		if r.IntN(12) == 0 {
			ua = len(statsUAs) - 1 // a bot
		}
		var evs []statsEvent
		for range min(left, 1+r.IntN(40)) {
			left--
			if i := r.IntN(max(1, len(acked))); len(acked) > 0 && r.IntN(10) == 0 && acked[i].UA == ua {
				evs = append(evs, acked[i])
				continue
			}
			seq++
			site := statsSite
			if r.IntN(10) == 0 {
				site = statsNoise
			}
			evs = append(evs, tr.event(r, w*1_000_000+seq, site, ua))
		}
		if err := postStatsEvents(ctx, s, led, evs); err != nil {
			return err
		}
		acked = append(acked, evs...)
		time.Sleep(time.Duration(2+r.IntN(10)) * time.Millisecond)
	}
	return nil
}

// statsTraffic is when the events of the test happen.
type statsTraffic struct {
	now      time.Time
	lateness time.Duration // the server's --allowed-lateness
	dsts     []dstChange
	busy     []time.Time // hours that get more events
}

// event draws an event: its time mostly over the last 47 hours, some in
// the busy hours, some within a day of a DST change, and a few older than
// the allowed lateness.
func (tr statsTraffic) event(r *rand.Rand, seq int, site string, ua int) statsEvent {
	var ts time.Time
	k := r.IntN(200)
	switch {
	case k < 20:
		c := tr.dsts[r.IntN(len(tr.dsts))]
		ts = c.At.Add(time.Duration(r.Int64N(int64(52*time.Hour))) - 26*time.Hour)
	case k < 50:
		ts = tr.busy[r.IntN(len(tr.busy))].Add(time.Duration(r.Int64N(int64(time.Hour))))
	case k == 50:
		ts = tr.now.Add(-tr.lateness - time.Hour - time.Duration(r.Int64N(int64(48*time.Hour))))
	default:
		ts = tr.now.Add(-time.Minute - time.Duration(r.Int64N(int64(47*time.Hour))))
	}
	e := genStatsEvent(r, seq, site, ts.UnixMilli(), ua)
	e.TooLate = k == 50
	return e
}

// postStatsEvents posts evs (grouped by User-Agent, one request each) and
// records them once acknowledged.
func postStatsEvents(ctx context.Context, s *server, led *statsLedger, evs []statsEvent) error {
	byUA := map[int][]statsEvent{}
	for _, e := range evs {
		byUA[e.UA] = append(byUA[e.UA], e)
	}
	for ua, group := range byUA {
		lines := make([][]byte, len(group))
		for i, e := range group {
			lines[i] = e.json()
		}
		code, res, err := s.post(ctx, bytes.Join(lines, []byte("\n")), statsUAs[ua].UA)
		if err != nil {
			return err
		}
		if code != http.StatusAccepted || res.Accepted != len(group) {
			return fmt.Errorf("collect answered %d, %+v, for %d events", code, res, len(group))
		}
		day := time.Now().UTC().Format(time.DateOnly)
		for i := range group {
			group[i].Day = day
		}
		led.add(group)
	}
	return nil
}

// countedRows is how many events of site the Stats API counts.
func countedRows(events []statsEvent, site string) int {
	n := 0
	for _, e := range events {
		if e.Site == site && statsCounted(e) {
			n++
		}
	}
	return n
}

// postStats posts a Stats API query with the read token and returns the
// status and the body.
func (s *server) postStats(ctx context.Context, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url("/v1/stats"), bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+readToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// waitStatsCounted waits until every site's events over the whole
// retention ("all") are as many as the truth counts: the stream is
// applied.
func waitStatsCounted(ctx context.Context, t *testing.T, s *server, events []statsEvent) {
	t.Helper()
	for _, site := range []string{statsSite, statsNoise} {
		want := countedRows(events, site)
		body := fmt.Sprintf(`{"site_id":%q,"metrics":["events"],"date_range":"all"}`, site)
		var last string
		for {
			code, b, err := s.postStats(ctx, []byte(body))
			var a statsAnswer
			if err == nil && code == 200 && json.Unmarshal(b, &a) == nil && len(a.Results) == 1 && a.Results[0].Metrics[0] == float64(want) {
				break
			}
			last = fmt.Sprintf("%d %s %v", code, b, err)
			if ctx.Err() != nil {
				t.Fatalf("events of %s over all: %s, want %d", site, last, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// liveAnswer is one query's answer before the replay: its results and
// meta as JSON.
type liveAnswer struct {
	results, meta string
}

// checkStatsQueries asks every query and compares its answer with the
// truth; a relative range is resolved by the truth at the times just
// before and just after the request, either of which may be the server's.
func checkStatsQueries(ctx context.Context, t *testing.T, s *server, events []statsEvent, queries []statsQuery) []liveAnswer {
	t.Helper()
	out := make([]liveAnswer, len(queries))
	bad, nonEmpty, rows, dst, dstRows := 0, 0, 0, 0, 0
	for i, q := range queries {
		got, raw, err := askStats(ctx, s, q)
		if err != nil {
			t.Fatalf("query %d %s: %v", i, q.body(), err)
		}
		out[i] = liveAnswer{results: mustJSON(got.Results), meta: mustJSON(got.Meta)}
		if len(got.Results) > 0 {
			nonEmpty++
			rows += len(got.Results)
		}
		if q.DST {
			dst++
			dstRows += len(got.Results)
		}
		want, d := matchTruth(events, q, got, raw.before, raw.after)
		if d == "" {
			d = checkEcho(q, raw.body)
		}
		if d != "" {
			bad++
			if bad <= 5 {
				t.Errorf("query %d: %s\n  body %s\n  want %s\n  got  %s", i, d, q.body(), clip(mustJSON(want)), clip(string(raw.body)))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d queries differ from the truth", bad, len(queries))
	}
	t.Logf("%d queries: %d answered rows (%d rows in all), %d across a DST change (%d rows); %d differ from the truth",
		len(queries), nonEmpty, rows, dst, dstRows, bad)
	return out
}

// askedAt is a raw answer and the times around its request.
type askedAt struct {
	body          []byte
	before, after time.Time
}

func askStats(ctx context.Context, s *server, q statsQuery) (statsAnswer, askedAt, error) {
	var at askedAt
	at.before = time.Now()
	code, b, err := s.postStats(ctx, q.body())
	at.after, at.body = time.Now(), b
	if err != nil {
		return statsAnswer{}, at, err
	}
	if code != http.StatusOK {
		return statsAnswer{}, at, fmt.Errorf("status %d: %s", code, b)
	}
	var a statsAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return statsAnswer{}, at, fmt.Errorf("decode %s: %w", b, err)
	}
	return a, at, nil
}

// matchTruth compares got with the truth at before and, for a relative
// range, at after; it returns the truth and the difference ("" if none).
func matchTruth(events []statsEvent, q statsQuery, got statsAnswer, before, after time.Time) (statsAnswer, string) {
	want := statsTruth(events, q, before)
	d := diffStats(want, got)
	if d != "" && q.relative() {
		if w2 := statsTruth(events, q, after); diffStats(w2, got) == "" {
			return w2, ""
		}
	}
	return want, d
}

// checkEcho checks that the answer's query.date_range is the range the
// truth resolved, for ranges that do not move.
func checkEcho(q statsQuery, body []byte) string {
	if q.relative() {
		return ""
	}
	var echo struct {
		Query struct {
			DateRange [2]string `json:"date_range"`
		} `json:"query"`
	}
	if err := json.Unmarshal(body, &echo); err != nil {
		return "query.date_range: " + err.Error()
	}
	from, to := resolveRange(q.Range, time.Time{}, mustZone(q.TZ))
	f, ferr := time.Parse(time.RFC3339Nano, echo.Query.DateRange[0])
	e, terr := time.Parse(time.RFC3339Nano, echo.Query.DateRange[1])
	if ferr != nil || terr != nil || !f.Equal(from) || !e.Equal(to) {
		return fmt.Sprintf("query.date_range %v, want [%s %s]", echo.Query.DateRange, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return ""
}

// checkStatsReplay asks every query again after the replay was promoted:
// the answer must be the one before it, byte for byte in results and
// meta, unless the query's range is relative and moved over an event
// since, in which case it must equal the truth now. It returns how many
// answered the same and how many moved.
func checkStatsReplay(ctx context.Context, t *testing.T, s *server, events []statsEvent, queries []statsQuery, live []liveAnswer) (same, moved int) {
	t.Helper()
	bad := 0
	for i, q := range queries {
		got, at, err := askStats(ctx, s, q)
		if err != nil {
			t.Fatalf("query %d after the replay %s: %v", i, q.body(), err)
		}
		if mustJSON(got.Results) == live[i].results && mustJSON(got.Meta) == live[i].meta {
			same++
			continue
		}
		if q.relative() {
			if _, d := matchTruth(events, q, got, at.before, at.after); d == "" {
				moved++
				continue
			}
		}
		if bad++; bad <= 5 {
			t.Errorf("query %d answers differently after the replay into v2:\n  body %s\n  before results %s meta %s\n  after  %s",
				i, q.body(), clip(live[i].results), live[i].meta, clip(string(at.body)))
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d queries answer differently after the replay", bad, len(queries))
	}
	return same, moved
}

// clip shortens a long answer for a failure message.
func clip(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "..."
	}
	return s
}
