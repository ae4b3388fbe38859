package archive

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestDuckDBReadsArchive has DuckDB, an engine the archive is made for,
// read a written archive with Hive partitioning and checks its aggregates
// against the input. It needs node and @duckdb/node-api: set
// PULSE_DUCKDB_NODE_MODULES to the node_modules directory holding it
// (npm install --prefix DIR @duckdb/node-api); skipped otherwise.
func TestDuckDBReadsArchive(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: runs node")
	}
	modules := os.Getenv("PULSE_DUCKDB_NODE_MODULES")
	node, err := exec.LookPath("node")
	if modules == "" || err != nil {
		t.Skip("DuckDB check needs node and PULSE_DUCKDB_NODE_MODULES (npm install --prefix DIR @duckdb/node-api)")
	}
	if _, err := os.Stat(filepath.Join(modules, "@duckdb", "node-api")); err != nil {
		t.Skipf("no @duckdb/node-api under %s: %v", modules, err)
	}
	recs := genRecords(5, 3000, 4, 4, testStart)
	dir := filepath.Join(t.TempDir(), "archive")
	w := NewWriter(NewDir(dir), WriterConfig{MaxBytes: 128 << 10})
	for _, r := range recs {
		if err := w.Add(r.shard, r.seq, r.data, r.ev); err != nil {
			t.Fatal(err)
		}
	}
	flushAll(t, w, recs)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, err := exec.CommandContext(ctx, node, filepath.Join("testdata", "duckdb_check.mjs"), modules, dir).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("duckdb: %v\n%s", err, stderr)
	}
	var got struct {
		N         int64   `json:"n,string"` // BIGINT comes as a JSON string
		IDs       int64   `json:"ids,string"`
		UIDs      int64   `json:"uids,string"`
		Props     int64   `json:"props,string"`
		Bots      int64   `json:"bots,string"`
		Misplaced int64   `json:"misplaced,string"`
		SumTS     string  `json:"sum_ts"`
		PriceSum  float64 `json:"price_sum"`
		TSType    string  `json:"ts_type"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("duckdb output %q: %v", out, err)
	}
	var sumTS int64
	var uids, props, bots int64
	var price float64
	ids := map[string]bool{}
	for _, r := range recs {
		sumTS += r.ev.TS
		ids[r.ev.ID] = true
		if r.ev.UID != "" {
			uids++
		}
		if len(r.ev.Props) > 0 {
			props++
			if p, ok := r.ev.Props["price"].(float64); ok {
				price += p
			}
		}
		if r.ev.Bot {
			bots++
		}
	}
	want := []struct {
		name      string
		got, want any
	}{
		{"rows", got.N, int64(len(recs))},
		{"distinct ids", got.IDs, int64(len(ids))},
		{"sum of ts", got.SumTS, strconv.FormatInt(sumTS, 10)},
		{"non-null uid", got.UIDs, uids},
		{"non-null props", got.Props, props},
		{"bots", got.Bots, bots},
		{"rows outside their dt/hr partition", got.Misplaced, int64(0)},
		{"sum of props.price", got.PriceSum, price},
		{"type of ts", got.TSType, "TIMESTAMP WITH TIME ZONE"},
	}
	for _, c := range want {
		if c.got != c.want {
			t.Errorf("duckdb %s = %v, want %v", c.name, c.got, c.want)
		}
	}
}
