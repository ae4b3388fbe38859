package querystudy

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// The ingest side of A and B on redis-server: what one applied event
// costs Redis, and what a day of them keeps in memory. Keys here live in a
// throwaway server and are the study's own ("qs:"), not Pulse's layout.

var (
	// tupleScript is A's extra work per batch: HINCRBY/HINCRBYFLOAT per
	// distinct (key, field) of the batch (combined in Go first, as the
	// aggregator does), PEXPIREAT per key. ARGV: nkeys, then per key:
	// key, expire, nfields, then field, kind ("i"/"f"), increment.
	tupleScript = redis.NewScript(`
local i = 1
local nk = tonumber(ARGV[i]); i = i + 1
for _ = 1, nk do
  local k, exp, nf = ARGV[i], ARGV[i+1], tonumber(ARGV[i+2]); i = i + 3
  for _ = 1, nf do
    if ARGV[i+1] == 'f' then redis.call('HINCRBYFLOAT', k, ARGV[i], ARGV[i+2])
    else redis.call('HINCRBY', k, ARGV[i], ARGV[i+2]) end
    i = i + 3
  end
  redis.call('PEXPIREAT', k, exp)
end
return 0`)
	// appendScript is B's extra work per batch: one APPEND and PEXPIREAT
	// per (site, hour) the batch touches. ARGV: key, expire, rows, ...
	appendScript = redis.NewScript(`
for i = 1, #ARGV, 3 do
  redis.call('APPEND', ARGV[i], ARGV[i+2])
  redis.call('PEXPIREAT', ARGV[i], ARGV[i+1])
end
return 0`)
	// noopScript is the cost of a script call itself, subtracted from both.
	noopScript = redis.NewScript(`return 0`)
)

type stepDef struct {
	name  string
	width int64 // ms
}

func tupleSteps() []stepDef {
	return []stepDef{{"1m", 60_000}, {"1h", 3_600_000}, {"1d", 86_400_000}}
}

// tupleIncrements combines a batch into A's declared tuples: pageviews by
// (page, referrer) for Q2, events by (goal, plan) for Q3, sum of price by
// page for Q5, each at 1m, 1h and 1d. Returns the script's ARGV.
func tupleIncrements(batch []event.Event) []any {
	type inc struct {
		float bool
		n     float64
	}
	keys := map[string]map[string]*inc{}
	var order []string
	add := func(key, field string, float bool, n float64) {
		m := keys[key]
		if m == nil {
			m = map[string]*inc{}
			keys[key] = m
			order = append(order, key)
		}
		if m[field] == nil {
			m[field] = &inc{float: float}
		}
		m[field].n += n
	}
	for i := range batch {
		ev := &batch[i]
		plan, _ := ev.Props["plan"].(string)
		if plan == "" {
			plan = "(none)"
		}
		for _, st := range tupleSteps() {
			b := strconv.FormatInt(ev.TS-ev.TS%st.width, 10)
			if ev.Type == "pageview" {
				add("qs:t:pv:page+ref:"+st.name+":"+b, ev.Path+"\x1f"+ev.RefHost, false, 1)
			}
			add("qs:t:ev:goal+plan:"+st.name+":"+b, ev.Type+"\x1f"+plan, false, 1)
			if p, ok := ev.Props["price"].(float64); ok {
				add("qs:s:price:page:"+st.name+":"+b, ev.Path, true, p)
			}
		}
	}
	args := []any{len(order)}
	for _, k := range order {
		args = append(args, k, "4102444800000", len(keys[k]))
		for f, v := range keys[k] {
			if v.float {
				args = append(args, f, "f", strconv.FormatFloat(v.n, 'f', -1, 64))
			} else {
				args = append(args, f, "i", int64(v.n))
			}
		}
	}
	return args
}

// rowAppends encodes a batch into B's plain rows, one APPEND per hour.
func rowAppends(batch []event.Event) []any {
	var args []any
	var cur int64 = -1
	var buf []byte
	flush := func() {
		if buf != nil {
			args = append(args, "qs:f:"+strconv.FormatInt(cur, 10), "4102444800000", buf)
		}
	}
	for i := range batch {
		h := batch[i].TS - batch[i].TS%3_600_000
		if h != cur {
			flush()
			cur, buf = h, nil
		}
		buf = appendPlainRow(buf, &batch[i], h)
	}
	flush()
	return args
}

// chunkAppends encodes a batch as one compacted chunk per hour (a
// dictionary per batch), framed by its length: fewer bytes per row than
// plain rows once a batch holds many events of the site.
func chunkAppends(batch []event.Event) []any {
	segs := map[int64]*segment{}
	hours(batch, nil, segs)
	var args []any
	for h, seg := range segs {
		c := compact(seg)
		frame := binary.AppendUvarint(nil, uint64(len(c)))
		args = append(args, "qs:f:"+strconv.FormatInt(h, 10), "4102444800000", append(frame, c...))
	}
	return args
}

// applied is a day of the site's applied events (retries dropped).
func applied(evs []event.Event) []event.Event {
	seen := map[string]bool{}
	out := evs[:0:0]
	for _, ev := range evs {
		if !seen[ev.ID] {
			seen[ev.ID] = true
			out = append(out, ev)
		}
	}
	return out
}

// BenchmarkIngest applies one day of the normal site through each script
// at a batch size (events of this site per apply) and reports Redis CPU
// per event above a no-op script call, and the memory the day keeps.
// Run: go test -run '^$' -bench BenchmarkIngest -benchtime 1x ./internal/querystudy
func BenchmarkIngest(b *testing.B) {
	if testing.Short() {
		b.Skip("heavy: a day of events through redis-server")
	}
	day := applied(genDay(1, normalSite(), 0))
	for _, batch := range []int{1, 20, 500} {
		for _, design := range []string{"noop", "A-tuples", "B-append", "B-append-chunk"} {
			b.Run(fmt.Sprintf("%s/batch=%d", design, batch), func(b *testing.B) {
				for range b.N {
					ingestDay(b, day, design, batch)
				}
			})
		}
	}
}

func ingestDay(b *testing.B, day []event.Event, design string, batch int) {
	ctx := context.Background()
	b.StopTimer()
	rdb := redistest.Start(b).Client(b)
	for _, s := range []*redis.Script{noopScript, tupleScript, appendScript} {
		if err := s.Load(ctx, rdb).Err(); err != nil {
			b.Fatal(err)
		}
	}
	mem0 := usedMemory(b, rdb)
	calls0, cpu0 := redistest.Counters(b, rdb)
	b.StartTimer()
	var encode time.Duration
	for lo := 0; lo < len(day); lo += batch {
		chunk := day[lo:min(lo+batch, len(day))]
		var err error
		t0 := time.Now()
		var args []any
		script := noopScript
		switch design {
		case "A-tuples":
			args, script = tupleIncrements(chunk), tupleScript
		case "B-append":
			args, script = rowAppends(chunk), appendScript
		case "B-append-chunk":
			args, script = chunkAppends(chunk), appendScript
		}
		encode += time.Since(t0)
		if err = script.EvalSha(ctx, rdb, nil, args...).Err(); err != nil {
			b.Fatalf("%s: %v", design, err)
		}
	}
	b.StopTimer()
	calls1, cpu1 := redistest.Counters(b, rdb)
	n := float64(len(day))
	b.ReportMetric((cpu1-cpu0)*1e6/n, "redis-cpu-µs/event")
	b.ReportMetric(float64(encode.Nanoseconds())/n, "go-encode-ns/event")
	b.ReportMetric(float64(calls1-calls0)*1000/n, "cmds/1000events")
	keys, bytes := keyBytes(b, rdb, "qs:*")
	b.ReportMetric(float64(keys), "keys/site-day")
	b.ReportMetric(float64(bytes)/1e6, "MB/site-day")
	b.ReportMetric(float64(usedMemory(b, rdb)-mem0)/1e6, "used_memory-MB")
	if design == "A-tuples" {
		for _, st := range tupleSteps() {
			_, sb := keyBytes(b, rdb, "qs:*:"+st.name+":*")
			b.ReportMetric(float64(sb)/1e6, "MB-"+st.name)
		}
	}
}

func usedMemory(tb testing.TB, rdb *redis.Client) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		tb.Fatal(err)
	}
	return infoInt(info, "used_memory:")
}

// keyBytes sums MEMORY USAGE over the keys matching pattern.
func keyBytes(tb testing.TB, rdb *redis.Client, pattern string) (keys int, bytes int64) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		n, err := rdb.MemoryUsage(ctx, iter.Val(), 0).Result()
		if err != nil {
			tb.Fatal(err)
		}
		keys++
		bytes += n
	}
	if err := iter.Err(); err != nil {
		tb.Fatal(err)
	}
	return keys, bytes
}
