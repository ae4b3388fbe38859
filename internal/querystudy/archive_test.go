package querystudy

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/event"
)

// writeArchive writes days [0, days) of s through archive.Writer into
// dir, one shard, flushed every 5 minutes of receive time as the archiver
// does at its default MaxAge (so an hour is about 12 objects), and
// returns the bytes written.
func writeArchive(tb testing.TB, s shape, days int, dir string) int64 {
	ctx := context.Background()
	w := archive.NewWriter(archive.NewDir(dir), archive.WriterConfig{})
	const shard = "shard-000000"
	seq := int64(0)
	var window int64 = -1
	for d := range days {
		for _, ev := range genDay(1, s, d) {
			if win := ev.RT / 300_000; win != window {
				if window >= 0 {
					if _, err := w.Flush(ctx, shard); err != nil {
						tb.Fatal(err)
					}
				}
				window = win
			}
			seq++
			if err := w.Add(shard, strconv.FormatInt(seq, 10), nil, ev); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if _, err := w.Flush(ctx, shard); err != nil {
		tb.Fatal(err)
	}
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

// archiveScanner reads the archive the way replay does: archive.Read lists
// the receive hours that can hold the range (event.TimeRule) and keeps the
// rows by ts; the aggregator's decisions are then applied (ids remembered
// for the 10-minute dedup window in receive time, too-late events dropped,
// future ts clamped) and the applied events grouped into hourly segments.
type archiveScanner struct {
	store *archive.DirStore
	rule  event.TimeRule
	rows  int // rows decoded by the last scan
}

func (a *archiveScanner) scan(tb testing.TB, from, to int64) []*segment {
	segs := map[int64]*segment{}
	cur, prev := map[string]bool{}, map[string]bool{}
	var window int64
	a.rows = 0
	err := archive.Read(context.Background(), a.store, time.UnixMilli(from), time.UnixMilli(to), func(ev event.Event) error {
		a.rows++
		if w := ev.RT / 600_000; w != window {
			cur, prev, window = map[string]bool{}, cur, w
		}
		if cur[ev.ID] || prev[ev.ID] {
			return nil
		}
		cur[ev.ID] = true
		ts, verdict := a.rule.Judge(ev.TS, ev.RT)
		if verdict == event.TooLate {
			return nil
		}
		ev.TS = ts
		h := ts - ts%3_600_000
		if segs[h] == nil {
			segs[h] = newSegment(h)
		}
		segs[h].add(&ev)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return scanRange(segs, from, to)
}

// BenchmarkArchive writes 30 days of the normal site to a Parquet archive
// and times Q1-Q5 on it: C-cold reads and decodes the objects of the
// range with parquet-go (archive.Read) on every query, C-warm reads
// decoded hours from the query node's cache; D runs the same queries in
// DuckDB (through node and @duckdb/node-api, when PULSE_DUCKDB_NODE_MODULES
// names a node_modules holding it).
// Run: go test -run '^$' -bench BenchmarkArchive -benchtime 2x ./internal/querystudy
func BenchmarkArchive(b *testing.B) {
	if testing.Short() {
		b.Skip("heavy: writes 30 days of Parquet")
	}
	dir := studyArchive(b)
	segs := truth(normalSite(), studyDays)
	truthFetch := func(f, t int64) []*segment { return scanRange(segs, f, t) }
	from := studyStart.UnixMilli()
	to := from + studyDays*86_400_000
	sc := &archiveScanner{store: archive.NewDir(dir), rule: event.DefaultTimeRule()}
	for _, q := range []string{"Q1", "Q2", "Q3", "Q4", "Q5", "visits-7d"} {
		b.Run("C-cold/"+q, func(b *testing.B) {
			var got any
			rows := 0
			for range b.N {
				got = runQuery(q, func(f, t int64) []*segment {
					s := sc.scan(b, f, t)
					rows += sc.rows
					return s
				}, from, to)
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			reportError(b, q, got, runQuery(q, truthFetch, from, to))
		})
	}
	cache := sc.scan(b, from, to)
	n := 0
	for _, s := range cache {
		n += s.bytes()
	}
	b.Logf("C warm cache: %d hours, %.1f MB (%.2f MB per site-day)", len(cache), float64(n)/1e6, float64(n)/1e6/studyDays)
	cached := func(f, t int64) []*segment {
		var out []*segment
		for _, s := range cache {
			if s.start >= f && s.start < t {
				out = append(out, s)
			}
		}
		return out
	}
	for _, q := range []string{"Q1", "Q2", "Q3", "Q4", "Q5", "visits-7d"} {
		b.Run("C-warm/"+q, func(b *testing.B) {
			var got any
			for range b.N {
				got = runQuery(q, cached, from, to)
			}
			reportError(b, q, got, runQuery(q, truthFetch, from, to))
		})
	}
}

// studyArchive returns a directory holding the 30-day archive of the
// normal site: PULSE_QUERYSTUDY_ARCHIVE if set (written there once, then
// reused by later runs), else a new temporary directory.
func studyArchive(b *testing.B) string {
	dir := os.Getenv("PULSE_QUERYSTUDY_ARCHIVE")
	if dir == "" {
		dir = filepath.Join(b.TempDir(), "archive")
	}
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return dir
	}
	t0 := time.Now()
	size := writeArchive(b, normalSite(), studyDays, dir)
	b.Logf("archive: %d days written in %v, %.1f MB (%.2f MB per site-day)", studyDays, time.Since(t0).Round(time.Millisecond),
		float64(size)/1e6, float64(size)/1e6/studyDays)
	if err := os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkDuckDB is design D: the same queries in DuckDB over the
// archive of BenchmarkArchive.
// Run: PULSE_DUCKDB_NODE_MODULES=DIR go test -run '^$' -bench BenchmarkDuckDB -benchtime 1x ./internal/querystudy
func BenchmarkDuckDB(b *testing.B) {
	if testing.Short() {
		b.Skip("heavy: writes 30 days of Parquet")
	}
	from := studyStart.UnixMilli()
	to := from + studyDays*86_400_000
	first := duckdb(b, studyArchive(b), from, to)
	v, pv := q1(scanRange(truth(normalSite(), studyDays), from, to))
	if want := fmt.Sprintf(`{"visitors":"%d","pageviews":"%d"}`, v, pv); first["Q1"] != want {
		b.Errorf("DuckDB Q1 %s, want %s", first["Q1"], want)
	}
}

// duckdb runs queries.mjs over the archive and reports its timings: the
// first run of each query (cold: a fresh DuckDB, files from the page
// cache) and the median of the next ones.
func duckdb(b *testing.B, dir string, from, to int64) (first map[string]string) {
	modules := os.Getenv("PULSE_DUCKDB_NODE_MODULES")
	node, err := exec.LookPath("node")
	if modules == "" || err != nil {
		b.Skip("D needs node and PULSE_DUCKDB_NODE_MODULES")
	}
	out, err := exec.Command(node, filepath.Join("testdata", "queries.mjs"), modules, dir,
		strconv.FormatInt(from, 10), strconv.FormatInt(to, 10)).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		b.Fatalf("duckdb: %v\n%s", err, stderr)
	}
	var res []struct {
		Q      string  `json:"q"`
		ColdMS float64 `json:"cold_ms"`
		WarmMS float64 `json:"warm_ms"`
		Rows   int     `json:"rows"`
		First  string  `json:"first"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		b.Fatalf("duckdb output %q: %v", out, err)
	}
	first = map[string]string{}
	for _, r := range res {
		first[r.Q] = r.First
		b.Run("D/"+r.Q, func(b *testing.B) {
			b.ReportMetric(r.ColdMS, "cold-ms")
			b.ReportMetric(r.WarmMS, "warm-ms")
			b.ReportMetric(float64(r.Rows), "result-rows")
		})
		b.Logf("D %s: cold %.1f ms, warm %.1f ms, %d rows, first %s", r.Q, r.ColdMS, r.WarmMS, r.Rows, r.First)
	}
	return first
}
