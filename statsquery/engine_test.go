package statsquery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/factrow"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/rowdir"
	"github.com/pulsehq/pulse/stats"
)

// countingStore is the real store, counting the row bytes read.
type countingStore struct {
	*redisagg.Store
	read int64
}

func (c *countingStore) RowBytes(ctx context.Context, site string, hour, from, to int64) ([]byte, error) {
	b, err := c.Store.RowBytes(ctx, site, hour, from, to)
	c.read += int64(len(b))
	return b, err
}

var _ RowStore = (*redisagg.Store)(nil)

type fixture struct {
	st   *redisagg.Store
	now  time.Time
	rows []stats.Row // every row applied, the truth Execute runs on
	seq  int
}

// apply applies n random events over the 3 hours before now as one commit.
func (f *fixture) apply(t *testing.T, rng *rand.Rand, n int) *metric.Commit {
	t.Helper()
	u := &metric.Update{Rows: map[metric.RowKey][]byte{}}
	for i := range n {
		ev := event.Event{
			Type: []string{"pageview", "pageview", "signup", "click"}[rng.IntN(4)],
			Path: fmt.Sprintf("/p%d", rng.IntN(7)), URL: "https://shop.example/x", RefHost: []string{"", "google.com", "news.ycombinator.com"}[rng.IntN(3)],
			Device: []string{"desktop", "mobile"}[rng.IntN(2)], UID: fmt.Sprintf("u%d", rng.IntN(40)),
			Props: map[string]any{"plan": []string{"free", "pro"}[rng.IntN(2)], "price": float64(rng.IntN(1000)) / 100},
		}
		if i%5 == 0 {
			ev.UID = ""
		}
		ts := f.now.Add(-time.Duration(rng.Int64N(int64(3 * time.Hour)))).UnixMilli()
		r := factrow.FromEvent(&ev, ts)
		k := metric.RowKey{Site: "demo", Hour: factrow.HourOf(ts)}
		u.Rows[k] = factrow.Append(u.Rows[k], &r, k.Hour)
		f.rows = append(f.rows, r)
	}
	f.seq++
	c := &metric.Commit{Shard: "s1", First: fmt.Sprint(f.seq), Last: fmt.Sprint(f.seq), Update: u,
		Pos: metric.Position{Seq: fmt.Sprint(f.seq)}}
	if err := f.st.Apply(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func newFixture(t *testing.T, files redisagg.RowFiles) (*fixture, *redis.Client) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	now := time.Date(2026, 12, 7, 15, 30, 0, 0, time.UTC)
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	st := redisagg.New(rdb, cat, redisagg.Config{Now: func() time.Time { return now }, RowFiles: files})
	return &fixture{st: st, now: now}, rdb
}

var queries = []string{
	`{"site_id":"demo","metrics":["visitors","pageviews","events"],"date_range":"day"}`,
	`{"site_id":"demo","metrics":["pageviews","visitors"],"date_range":"day","dimensions":["event:page","visit:referrer"],"filters":[["is_not","visit:device",["mobile"]]]}`,
	`{"site_id":"demo","metrics":["events","sum:props.price","avg:props.price"],"date_range":"24h","dimensions":["time:hour","event:props:plan"],"timezone":"Europe/Berlin"}`,
	`{"site_id":"demo","metrics":["visitors","conversion_rate"],"date_range":"day","dimensions":["event:goal"]}`,
	`{"site_id":"demo","metrics":["visits","bounce_rate","visit_duration","pageviews"],"date_range":"day","dimensions":["visit:entry_page"],"filters":[["is_not","visit:device",["mobile"]]]}`,
}

// hoursOf serves rows as the engine's views of their hours would.
func hoursOf(rows []stats.Row) stats.HourViews {
	byHour := map[int64][]stats.Row{}
	for _, r := range rows {
		h := factrow.HourOf(r.TS)
		byHour[h] = append(byHour[h], r)
	}
	numbers := stats.NewVisitorNumbers()
	return func(hours []int64) ([]stats.SegmentView, error) {
		out := make([]stats.SegmentView, len(hours))
		for i, h := range hours {
			seg := stats.NewSegment(h, numbers)
			if err := seg.Append(byHour[h]); err != nil {
				return nil, err
			}
			out[i] = seg.View()
		}
		return out, nil
	}
}

func (f *fixture) check(t *testing.T, e *Engine) {
	t.Helper()
	for _, body := range queries {
		q, err := stats.Parse([]byte(body), f.now)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		got, err := e.Answer(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		var want stats.Answer
		if q.NeedsVisits() {
			want, err = stats.ExecuteVisits(q, f.now, hoursOf(f.rows))
		} else {
			want, err = stats.Execute(q, stats.RowsOf(f.rows))
		}
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Results, want.Results) {
			g, _ := json.Marshal(got.Results)
			w, _ := json.Marshal(want.Results)
			t.Errorf("%s:\n got %s\nwant %s", body, g, w)
		}
	}
}

// TestAnswerFollowsAppends: the engine answers from the rows the apply
// script appended, exactly as Execute over the same rows, reads only the
// bytes appended since the last query, and a redelivered commit changes
// nothing; with the rows in Redis, and in files (the embedded mode).
func TestAnswerFollowsAppends(t *testing.T) {
	dir, err := rowdir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, files := range map[string]redisagg.RowFiles{"redis": nil, "files": dir} {
		t.Run(name, func(t *testing.T) { followAppends(t, files) })
	}
}

func followAppends(t *testing.T, files redisagg.RowFiles) {
	f, _ := newFixture(t, files)
	rng := rand.New(rand.NewPCG(1, 2))
	cs := &countingStore{Store: f.st}
	e := New(cs, Config{Now: func() time.Time { return f.now }})
	f.apply(t, rng, 500)
	f.check(t, e)
	first := cs.read
	c := f.apply(t, rng, 300)
	cs.read = 0
	f.check(t, e)
	var appended int64
	for _, b := range c.Update.Rows {
		appended += int64(len(b))
	}
	if cs.read != appended {
		t.Errorf("second round read %d bytes, want only the %d appended (first round read %d)", cs.read, appended, first)
	}
	if err := f.st.Apply(context.Background(), c); err != nil { // redelivery: skipped by the checkpoint
		t.Fatal(err)
	}
	f.check(t, e)

	small := New(f.st, Config{Now: func() time.Time { return f.now }, CacheBytes: smallCache})
	f.check(t, small)
	if b := small.CachedBytes(); b > smallCache {
		t.Errorf("cache holds %d bytes, bound %d", b, smallCache)
	}
	none := New(f.st, Config{Now: func() time.Time { return f.now }, CacheBytes: -1})
	f.check(t, none)
	if b := none.CachedBytes(); b != 0 {
		t.Errorf("a cache of -1 bytes holds %d", b)
	}
}

func TestPrepareRefuses(t *testing.T) {
	now := time.Date(2026, 12, 7, 15, 30, 0, 0, time.UTC)
	e := New(nil, Config{Now: func() time.Time { return now }, Retention: 35 * 24 * time.Hour})
	tests := []struct {
		body, part string
	}{
		{`{"site_id":"demo","metrics":["visitors"],"date_range":["2026-10-01","2026-10-31"]}`, "date_range"},
		{`{"site_id":"demo","metrics":["visits"],"date_range":"day","dimensions":["event:page"]}`, "dimensions[0]"},
	}
	for _, tc := range tests {
		q, err := stats.Parse([]byte(tc.body), now)
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		_, err = e.Answer(context.Background(), q)
		var se *stats.Error
		if !errors.As(err, &se) || se.Part != tc.part {
			t.Errorf("%s: error %v, want a *stats.Error naming %s", tc.body, err, tc.part)
		}
	}
	q, _ := stats.Parse([]byte(`{"site_id":"demo","metrics":["visitors"],"date_range":"all"}`), now)
	q, err := e.Prepare(context.Background(), q, now)
	if err != nil || q.Range.From.Before(e.Oldest(now).Add(-24*time.Hour)) {
		t.Errorf("all: from %v err %v, want the day of the oldest row kept (%v)", q.Range.From, err, e.Oldest(now))
	}
}

// smallCache is a cache bound far below the fixture's rows, so that hours
// are dropped and read again, and visitors numbered anew, within a check.
const smallCache = 8_000

// TestAnswerWhileApplying: queries on several goroutines share the cached
// hours while commits grow them (go test -race checks the snapshots), and
// once the commits stop the engine answers as Execute over every row.
func TestAnswerWhileApplying(t *testing.T) {
	f, _ := newFixture(t, nil)
	rng := rand.New(rand.NewPCG(5, 6))
	f.apply(t, rng, 300)
	e := New(f.st, Config{Now: func() time.Time { return f.now }})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 3)
	for i := range 3 {
		go func() {
			q, err := stats.Parse([]byte(queries[i%2+1]), f.now)
			for err == nil && ctx.Err() == nil {
				_, err = e.Answer(ctx, q)
			}
			if ctx.Err() != nil {
				err = nil
			}
			done <- err
		}()
	}
	for range 20 {
		f.apply(t, rng, 100)
	}
	stop()
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	f.check(t, e)
}

// TestPrepareBeforeRows: a range reaching before the rows kept is answered
// for a site whose daily counts show no event there (a young site asked
// for 12 months), and refused for one that had events then.
func TestPrepareBeforeRows(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	cat, err := metric.NewCatalog(metric.Builtins(), metric.DefaultSteps())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now() // Redis expires the counts by its own clock
	clock := func() time.Time { return now }
	st := redisagg.New(rdb, cat, redisagg.Config{Now: clock})
	day := cat.Steps[len(cat.Steps)-1]
	u := metric.NewUpdate()
	u.Counts[metric.CountKey{Site: "old", Metric: "events", Step: day.Name, Bucket: day.Bucket(now.Add(-100 * 24 * time.Hour).UnixMilli())}] = 1
	c := &metric.Commit{Shard: "s", First: "1", Last: "1", Update: u, Pos: metric.Position{Seq: "1", DedupFrom: "1"}}
	if err := st.Apply(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	counted := New(st, Config{Now: clock, Counts: st})
	for _, tc := range []struct {
		e         *Engine
		site      string
		dateRange string
		ok        bool
	}{
		{counted, "young", `"12mo"`, true},
		{counted, "young", `"30d"`, true},
		{counted, "old", `"12mo"`, false},
		{counted, "old", `"30d"`, true},
		{New(st, Config{Now: clock}), "young", `"12mo"`, false},  // without counts, refused
		{counted, "young", `["2020-01-01","2020-12-31"]`, false}, // before the daily counts kept
	} {
		q, err := stats.Parse([]byte(`{"site_id":"`+tc.site+`","metrics":["visitors"],"date_range":`+tc.dateRange+`}`), now)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tc.e.Answer(context.Background(), q)
		var se *stats.Error
		if tc.ok && err != nil || !tc.ok && !(errors.As(err, &se) && se.Part == "date_range") {
			t.Errorf("%s %s: %v, want answered %v", tc.site, tc.dateRange, err, tc.ok)
		}
	}
	// A live query resolves its range at every refresh: the counts are
	// read once while the oldest rows stay the same.
	calls := &countedCounts{EventCounter: st}
	e := New(st, Config{Now: clock, Counts: calls})
	q, err := stats.Parse([]byte(`{"site_id":"young","metrics":["visitors"],"date_range":"12mo"}`), now)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := e.Prepare(context.Background(), q, now); err != nil {
			t.Fatal(err)
		}
	}
	if calls.n != 1 {
		t.Errorf("counts read %d times for three preparations, want once", calls.n)
	}
}

// countedCounts counts the reads of an EventCounter.
type countedCounts struct {
	EventCounter
	n int
}

func (c *countedCounts) EventsIn(ctx context.Context, site string, from, to time.Time) (int64, error) {
	c.n++
	return c.EventCounter.EventsIn(ctx, site, from, to)
}
