package bench

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/redisinfo"
	"github.com/pulsehq/pulse/loadgen"
)

func TestParseSystems(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"embedded,redis", []string{"embedded", "redis"}, false},
		{" redis ", []string{"redis"}, false},
		{"embedded,valkey", nil, true},
		{"", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseSystems(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("ParseSystems(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseCounters(t *testing.T) {
	page := `# HELP pulse_ingest_events_total Events received, by result.
# TYPE pulse_ingest_events_total counter
pulse_ingest_events_total{result="accepted"} 1.2e+06
pulse_ingest_events_total{result="rejected"} 7
# HELP pulse_aggregator_events_total Records read by the aggregator, by outcome.
# TYPE pulse_aggregator_events_total counter
pulse_aggregator_events_total{outcome="applied"} 1.1e+06
pulse_aggregator_events_total{outcome="future_clamped"} 40
pulse_aggregator_events_total{outcome="duplicate"} 3
pulse_aggregator_events_total{outcome="too_late"} 0
# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
`
	tests := []struct {
		name    string
		page    string
		want    pipelineCounters
		wantErr bool
	}{
		{"running", page, pipelineCounters{Accepted: 1200000, Read: 1100043, Applied: 1100040}, false},
		{"nothing counted yet", "# TYPE go_goroutines gauge\ngo_goroutines 42\n", pipelineCounters{}, false},
		{"not Prometheus text", "<html>", pipelineCounters{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCounters(strings.NewReader(tt.page))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseCounters = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
			if tt.name == "running" && got.lag() != 99957 {
				t.Fatalf("lag %d, want accepted - read = 99957", got.lag())
			}
		})
	}
}

// TestTopCommands: the table's cell of the commands that took most time.
func TestTopCommands(t *testing.T) {
	cmds := []redisinfo.CommandStat{{Name: "evalsha", Calls: 1098, Usec: 1466928}, {Name: "zadd", Calls: 13072, Usec: 117648}, {Name: "ping", Calls: 4, Usec: 2}}
	if got := topCommands(cmds, 2); got != "EVALSHA 1336 µs × 1098; ZADD 9 µs × 13072" {
		t.Fatalf("topCommands = %q", got)
	}
	if got := topCommands(nil, 2); got != "—" {
		t.Fatalf("topCommands of none = %q", got)
	}
}

func TestParseVmHWM(t *testing.T) {
	if got := parseStatusKiB(readFixture(t, "status"), "VmHWM:"); got != 52340 {
		t.Fatalf("VmHWM = %d", got)
	}
	if got := parseStatusKiB(readFixture(t, "status-kthread"), "VmHWM:"); got != 0 {
		t.Fatalf("kernel thread VmHWM = %d, want 0", got)
	}
}

func TestOtherStatuses(t *testing.T) {
	tests := []struct {
		in   map[int]int64
		want string
	}{
		{map[int]int64{202: 10, 0: 2}, "0"},
		{map[int]int64{202: 10, 503: 3, 400: 1}, "1× 400, 3× 503"},
	}
	for _, tt := range tests {
		if got := otherStatuses(tt.in); got != tt.want {
			t.Errorf("otherStatuses(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestE2E runs the bench briefly, at a small rate, against the real pulse
// binary on each system, and checks that the counts add up: every event
// answered 202 was accepted, and once drained every accepted event was
// applied exactly once and no more reached the subscriber.
func TestE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: builds pulse and runs it as a child process")
	}
	bin := filepath.Join(t.TempDir(), "pulse")
	build := exec.Command("go", "build", "-o", bin, "github.com/pulsehq/pulse/cmd/pulse")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build pulse: %v\n%s", err, out)
	}
	var log bytes.Buffer
	env := Env{Pulse: bin, Out: os.Stdout, Log: &log}
	cfg := E2EConfig{Rate: 1000, Warmup: time.Second, Duration: 2 * time.Second, Batch: 10, Connections: 4, DrainTimeout: 2 * time.Minute}
	var figs []e2eFigures
	for _, sys := range []string{SystemEmbedded, SystemRedis} {
		if _, err := exec.LookPath("redis-server"); err != nil && sys == SystemRedis {
			t.Logf("no redis-server on PATH: %s not measured", sys)
			continue
		}
		f, err := runE2E(t.Context(), env, cfg, sys)
		if err != nil {
			t.Fatalf("%s: %v\nlog:\n%s", sys, err, log.String())
		}
		checkE2ECounts(t, sys, f)
		figs = append(figs, f)
	}
	var table bytes.Buffer
	printE2E(&table, cfg, figs)
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 2+len(e2eRows(cfg)) || !strings.Contains(lines[0], "embedded Redis") {
		t.Fatalf("table:\n%s", table.String())
	}
}

func checkE2ECounts(t *testing.T, sys string, f e2eFigures) {
	t.Helper()
	sent := f.requests
	if sent+f.notOffered != f.scheduled || f.stats.Status[202] == 0 {
		t.Errorf("%s: %d sent + %d not offered != %d scheduled, or no 202 (%v)", sys, sent, f.notOffered, f.scheduled, f.stats.Status)
	}
	if !f.drained {
		t.Fatalf("%s: not drained: %+v", sys, f.final)
	}
	if f.final.Accepted != f.stats.Events || f.final.Applied != f.final.Accepted || f.final.Read != f.final.Applied {
		t.Errorf("%s: %d events answered 202, %d accepted, %d applied, %d read: want all equal", sys, f.stats.Events, f.final.Accepted, f.final.Applied, f.final.Read)
	}
	if f.subscriberTotal > f.final.Applied || f.events <= 0 || f.pulseCPU <= 0 {
		t.Errorf("%s: subscriber saw %d of %d applied; %d events in the CPU window, pulse CPU %v", sys, f.subscriberTotal, f.final.Applied, f.events, f.pulseCPU)
	}
	if !f.embedded && (f.redisCPU <= 0 || len(f.cmds) == 0) {
		t.Errorf("%s: redis-server CPU %v, commands %+v", sys, f.redisCPU, f.cmds)
	}
	t.Logf("%s: %d events, subscriber %d, freshness p50 %v, %d acks never covered", sys, f.final.Applied, f.subscriberTotal, f.fresh.Percentile(50), f.freshMissed)
}

func TestKeptUp(t *testing.T) {
	ok := loadgen.FeedStats{Status: map[int]int64{202: 100}}
	tests := []struct {
		name string
		f    e2eFigures
		want string
	}{
		{"kept up", e2eFigures{stats: ok, requests: 100, endLag: 900}, "yes"},
		{"not offered", e2eFigures{stats: ok, requests: 100, notOffered: 3}, "no: 3 requests not offered"},
		{"refused", e2eFigures{stats: loadgen.FeedStats{Status: map[int]int64{202: 98, 503: 2}}, requests: 100}, "no: 2 requests not answered 202"},
		{"behind", e2eFigures{stats: ok, requests: 100, endLag: 1001}, "no: 1001 events behind at the end (more than 1 s of load)"},
	}
	for _, tt := range tests {
		if got := tt.f.keptUp(1000); got != tt.want {
			t.Errorf("%s: keptUp = %q, want %q", tt.name, got, tt.want)
		}
	}
}
