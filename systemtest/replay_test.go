package systemtest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/namespace"
	"github.com/pulsehq/pulse/redisagg"
)

// sender sends generated events, keeping the ground truth and the list of
// events accepted.
type sender struct {
	s    *server
	tr   *truth
	r    *rand.Rand
	now  time.Time
	seq  int
	sent []genEvent
}

func newSender(s *server, seed uint64) *sender {
	return &sender{s: s, tr: newTruth(), r: rand.New(rand.NewPCG(seed, 7)), now: time.Now()}
}

// send posts n events in requests of up to 40 events of one user agent.
func (x *sender) send(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	for n > 0 {
		ua := x.r.IntN(3)
		if x.r.IntN(10) == 0 {
			ua = 3 // a bot
		}
		k := min(n, 1+x.r.IntN(40))
		var lines [][]byte
		var evs []genEvent
		for i := 0; i < k; i++ {
			x.seq++
			e := newGenEvent(x.r, x.seq, x.now, ua)
			evs = append(evs, e)
			lines = append(lines, e.json())
		}
		code, res, err := x.s.post(ctx, bytes.Join(lines, []byte("\n")), userAgents[ua].UA)
		if err != nil || code != 202 || res.Accepted != k {
			t.Fatalf("collect: %d %+v %v", code, res, err)
		}
		for _, e := range evs {
			x.tr.add(e)
		}
		x.sent = append(x.sent, evs...)
		n -= k
	}
}

// waitTruth polls the REST queries until they equal the truth.
func waitTruth(ctx context.Context, t *testing.T, s *server, x *sender) {
	t.Helper()
	var diff, lastErr string
	for ctx.Err() == nil {
		d, err := checkAll(ctx, t, s, x.tr, x.now)
		if err == nil && d == "" {
			return
		}
		if d != "" {
			diff = d
		}
		if err != nil && ctx.Err() == nil {
			lastErr = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("aggregates never matched the truth:\n%s\nlast error: %s", diff, lastErr)
}

// pulse runs a pulse admin command against s and returns its output and
// exit error.
func (s *server) pulse(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, pulseBin, append(args, "--server", "http://"+s.addr, "--admin-token", adminToken)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// startS3Env runs gofakes3 in this process, creates bucket, and points the
// pulse subprocesses at it through the SDK's standard environment.
func startS3Env(t *testing.T, bucket string) archive.ObjectStore {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_S3": srv.URL, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	return archive.NewS3(client, bucket, "raw")
}

// archived counts the events in the archive.
func archived(ctx context.Context, store archive.ObjectStore) (int, error) {
	n := 0
	err := archive.Read(ctx, store, time.Now().Add(-48*time.Hour), time.Now().Add(time.Hour), func(event.Event) error { n++; return nil })
	return n, err
}

// compareNamespaces lists every counter that differs between two
// namespaces, over all buckets.
func compareNamespaces(ctx context.Context, t *testing.T, rdb redis.UniversalClient, a, b, metricsConfig string) redisagg.Report {
	t.Helper()
	cat, err := namespace.ParseCatalog(metricsConfig)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := redisagg.Compare(ctx, rdb, cat, a, b, 0, 1<<52)
	if err != nil {
		t.Fatalf("compare %s and %s: %v", a, b, err)
	}
	return rep
}

// TestReplayPromoteUnderWebSocket archives events to S3 (gofakes3, through
// the SDK), replays the archive and the not yet archived tail of the stream
// into namespace v2, and checks that v2 equals the live namespace v1
// counter by counter and the ground truth through the REST queries once
// promoted. A dashboard subscribed over a WebSocket during the promote gets
// a reset snapshot from v2 and then deltas with no gap; events sent after
// the promote count exactly in v2, live and over REST.
func TestReplayPromoteUnderWebSocket(t *testing.T) {
	store := startS3Env(t, "pulse-archive")
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	s := newServer(t, "--redis", rs.URL(), "--archive", "s3://pulse-archive/raw", "--archive-max-age", "200ms", "--rate-ip", "-1", "--rate-site", "-1")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	x := newSender(s, 1)

	// First part: archived before the replay.
	x.send(ctx, t, 1500)
	for {
		n, err := archived(ctx, store)
		if err != nil {
			t.Fatalf("read archive: %v", err)
		}
		if n == len(x.sent) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("archive holds %d of %d events", n, len(x.sent))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Second part: sent right before the replay, so part of it is read
	// from the stream.
	x.send(ctx, t, 500)
	waitTruth(ctx, t, s, x)

	ws := s.subscribe(ctx, t, `{"op":"subscribe","id":"s1","site":"demo","metric":"events","step":"1m","window":"2h"}`)
	var live liveTotal
	if m := read(ctx, t, ws); m.Op != "snapshot" {
		t.Fatalf("first message %+v, want a snapshot", m)
	} else {
		live.apply(t, m)
	}

	if out, err := s.pulse(ctx, "replay", "--namespace", "v2"); err != nil {
		t.Fatalf("pulse replay: %v\n%s", err, out)
	}
	if rep := compareNamespaces(ctx, t, rdb, "v1", "v2", ""); len(rep.Drift) > 0 || rep.Counters == 0 {
		t.Fatalf("v2 differs from v1 in %d of %d counters: %+v", len(rep.Drift), rep.Counters, rep.Drift[:min(5, len(rep.Drift))])
	} else {
		t.Logf("v2 equals v1: %d buckets, %d counters", rep.Buckets, rep.Counters)
	}
	if out, err := s.pulse(ctx, "promote", "v2"); err != nil {
		t.Fatalf("pulse promote: %v\n%s", err, out)
	}
	m := read(ctx, t, ws)
	for m.Op == "delta" { // deltas of v1 queued before the switch
		live.apply(t, m)
		m = read(ctx, t, ws)
	}
	if m.Op != "snapshot" || !m.Reset {
		t.Fatalf("after promote got %+v, want a reset snapshot", m)
	}
	live.apply(t, m)
	waitTruth(ctx, t, s, x)

	// The live aggregator continues in v2 from where the replay ended.
	x.send(ctx, t, 500)
	waitTruth(ctx, t, s, x)
	want := demoEvents(x.tr)
	for live.sum() != want {
		live.apply(t, read(ctx, t, ws)) // fails on a gap in seq
	}
	out, err := s.pulse(ctx, "namespaces")
	if err != nil || !strings.Contains(out, "v2    current") && !regexpMatch(`v2\s+current`, out) {
		t.Fatalf("pulse namespaces: %v\n%s", err, out)
	}
	if out, err := s.pulse(ctx, "drop", "v2"); err == nil {
		t.Fatalf("dropping the current namespace succeeded: %s", out)
	}
	if out, err := s.pulse(ctx, "drop", "v1"); err != nil {
		t.Fatalf("pulse drop v1: %v\n%s", err, out)
	}
	if n, err := rdb.Keys(ctx, "p:v1:*").Result(); err != nil || len(n) != 0 {
		t.Fatalf("after drop v1: %d keys left (%v)", len(n), err)
	}
}

// demoEvents is the truth's count of events of site demo (all buckets of
// step 1m), what an events/1m subscription of demo sums to.
func demoEvents(tr *truth) int64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var n int64
	for k, v := range tr.counts {
		if strings.HasPrefix(k, "demo|events|1m|") && strings.HasSuffix(k, "||") {
			n += v
		}
	}
	return n
}

const newDimensionConfig = `
builtins: true
metrics:
  - name: clicks_by_device
    kind: count
    types: [click]
    dimensions: [device, target]
`

// TestReplayNewMetricAndVerify replays with a metrics config that adds a
// metric with a new dimension (clicks by device), checks the new metric
// against the truth once promoted, then audits: verify reports zero drift
// on the clean namespace, and exactly the tampered counter (HINCRBY on the
// live bucket in redis-server) with a non-zero exit status. It also
// interrupts a replay by killing the server and checks that the replay,
// run again, resumes and still equals the live namespace.
func TestReplayNewMetricAndVerify(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	s := newServer(t, "--redis", rs.URL(), "--archive-max-age", "200ms", "--rate-ip", "-1", "--rate-site", "-1")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	x := newSender(s, 2)
	x.send(ctx, t, 3000)
	waitTruth(ctx, t, s, x)

	// Interrupted replay: kill the server while it builds v3, restart,
	// replay again: it resumes from the positions stored in v3 and ends
	// equal to the live namespace.
	cmd := exec.CommandContext(ctx, pulseBin, "replay", "--namespace", "v3", "--from", "-3h",
		"--server", "http://"+s.addr, "--admin-token", adminToken)
	var cliOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &cliOut, &cliOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill once the replay applied its first commit (a position in v3):
	// it cannot be ready before its first progress check, 250ms later.
	for len(rdb.Keys(ctx, "p:v3:{shard-*}:pos").Val()) == 0 {
		if ctx.Err() != nil {
			t.Fatal("replay never applied a commit to v3")
		}
		time.Sleep(time.Millisecond)
	}
	s.stop(syscall.SIGKILL)
	// The CLI watching the job tells how to go on.
	if err := cmd.Wait(); err != nil && !strings.Contains(cliOut.String(), "run the same command again") {
		t.Errorf("pulse replay after the server died: %v, with no hint to run it again:\n%s", err, cliOut.String())
	}
	s.run()
	out, err := s.pulse(ctx, "namespaces")
	if err != nil {
		t.Fatalf("pulse namespaces: %v\n%s", err, out)
	}
	if !regexpMatch(`v3\s+building`, out) {
		t.Logf("the replay finished before the kill; the resume below starts from a ready namespace:\n%s", out)
	}
	positions, _ := rdb.Keys(ctx, "p:v3:{*}:pos").Result()
	t.Logf("v3 interrupted with %d shard positions stored", len(positions))
	if out, err := s.pulse(ctx, "replay", "--namespace", "v3"); err != nil {
		t.Fatalf("resume replay v3: %v\n%s", err, out)
	}
	if rep := compareNamespaces(ctx, t, rdb, "v1", "v3", ""); len(rep.Drift) > 0 || rep.Counters == 0 {
		t.Fatalf("v3 differs from v1 in %d of %d counters: %+v", len(rep.Drift), rep.Counters, rep.Drift[:min(5, len(rep.Drift))])
	}

	// Verify, clean.
	out, err = s.pulse(ctx, "verify", "--from", "-2h")
	if err != nil || !strings.Contains(out, " 0 differ") {
		t.Fatalf("verify on a clean namespace: %v\n%s", err, out)
	}
	t.Logf("clean verify: %s", strings.TrimSpace(out))

	// Tamper with one live bucket: pageviews of demo, the 1m bucket of the
	// first pageview sent, +5 on its total.
	var bucket int64
	for _, e := range x.sent {
		if e.Site == "demo" && e.Type == "pageview" && !e.Bot {
			bucket = e.TS - e.TS%60_000
			break
		}
	}
	key := fmt.Sprintf("p:v1:{demo}:c:pageviews:1m:%d", bucket)
	if err := rdb.HIncrBy(ctx, key, "_", 5).Err(); err != nil {
		t.Fatal(err)
	}
	out, err = s.pulse(ctx, "verify", "--from", "-2h")
	if err == nil {
		t.Fatalf("verify after tampering exited 0:\n%s", out)
	}
	if !strings.Contains(out, " 1 differ") || !regexpMatch(`demo\s+pageviews\s+1m\s+`+regexpQuote(time.UnixMilli(bucket).UTC().Format("2006-01-02T15:04:05Z"))+`\s+\(total\)\s+\d+\s+\d+\s+\+5`, out) {
		t.Fatalf("verify after tampering did not report exactly the +5:\n%s", out)
	}
	t.Logf("verify after tampering:\n%s", out)
	if err := rdb.HIncrBy(ctx, key, "_", -5).Err(); err != nil {
		t.Fatal(err)
	}

	// A changed definition: a new metric with a new dimension.
	cfgPath := filepath.Join(t.TempDir(), "metrics.yaml")
	if err := os.WriteFile(cfgPath, []byte(newDimensionConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := s.pulse(ctx, "replay", "--namespace", "v2", "--metrics-config", cfgPath, "--promote"); err != nil {
		t.Fatalf("replay with a new metric: %v\n%s", err, out)
	}
	want := map[string]int64{}
	for _, e := range x.sent {
		if e.Type == "click" && !e.Bot && e.Site == "demo" {
			want[e.Device+"|"+fmt.Sprint(e.TS-e.TS%3_600_000)]++
		}
	}
	var got queryResult
	from := x.now.Add(-2 * time.Hour).UnixMilli()
	if err := s.get(ctx, "/v1/query", queryValues("demo", "clicks_by_device", "1h", "device", from, time.Now().UnixMilli()), &got); err != nil {
		t.Fatalf("query the new metric: %v", err)
	}
	have := map[string]int64{}
	for _, sr := range got.Series {
		for _, p := range sr.Points {
			if p[1] != 0 {
				have[sr.Labels["device"]+"|"+fmt.Sprint(int64(p[0]))] += int64(p[1])
			}
		}
	}
	if fmt.Sprint(have) != fmt.Sprint(want) {
		t.Fatalf("clicks_by_device by device: got %v, want %v", have, want)
	}
	// And the built-ins still match the truth in the promoted namespace,
	// also for events after the promote.
	x.send(ctx, t, 300)
	waitTruth(ctx, t, s, x)
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }

// TestEmbeddedRestartKeepsNamespaces promotes a replayed namespace with a
// new metric on the embedded defaults (in-memory Redis), restarts the
// server, and checks the pointer and the registry survived in the data
// dir: the promoted namespace is still current, rebuilt from the local
// stream with its own metric definitions, and the old one is listed as
// building again (its aggregates went with the process).
func TestEmbeddedRestartKeepsNamespaces(t *testing.T) {
	s := newServer(t, "--archive-max-age", "200ms", "--rate-ip", "-1", "--rate-site", "-1")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	x := newSender(s, 3)
	x.send(ctx, t, 1000)
	waitTruth(ctx, t, s, x)
	cfgPath := filepath.Join(t.TempDir(), "metrics.yaml")
	if err := os.WriteFile(cfgPath, []byte(newDimensionConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := s.pulse(ctx, "replay", "--namespace", "v2", "--metrics-config", cfgPath, "--promote"); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	s.stop(syscall.SIGKILL)
	s.run()
	out, err := s.pulse(ctx, "namespaces")
	if err != nil || !regexpMatch(`(?m)^v2\s+current`, out) || !regexpMatch(`(?m)^v1\s+building`, out) {
		t.Fatalf("after restart: %v\n%s", err, out)
	}
	waitTruth(ctx, t, s, x)
	var got queryResult
	if err := s.get(ctx, "/v1/query", queryValues("demo", "clicks_by_device", "1h", "", x.now.Add(-2*time.Hour).UnixMilli(), time.Now().UnixMilli()), &got); err != nil {
		t.Fatalf("the promoted namespace's own metric after a restart: %v", err)
	}
	var want, have int64
	for _, e := range x.sent {
		if e.Site == "demo" && e.Type == "click" && !e.Bot {
			want++
		}
	}
	for _, sr := range got.Series {
		for _, p := range sr.Points {
			have += int64(p[1])
		}
	}
	if have != want {
		t.Fatalf("clicks_by_device after restart: %d, want %d", have, want)
	}
}
