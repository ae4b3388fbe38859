package systemtest

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/redistest"
)

// TestCrashRecovery sends thousands of events (with client retries of the
// same ids, timestamps spread over the last hour, invalid lines mixed into
// valid bodies) while pulse is killed with SIGKILL at random moments,
// requests in flight included; every request that got no answer is resent.
// After the last restart every aggregate, for each metric and step, must
// equal the ground truth exactly (uniques within HyperLogLog's error).
//
// Embedded mode rebuilds the aggregates from the retained stream at each
// start; with a real redis-server the aggregator resumes from the positions
// committed with the aggregates and rebuilds its dedup state.
func TestCrashRecovery(t *testing.T) {
	for _, tc := range []struct {
		name  string
		redis func(t *testing.T) string
	}{
		{"embedded", func(*testing.T) string { return "embedded" }},
		{"redis-server", func(t *testing.T) string { return redistest.Start(t).URL() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			s := newServer(t, "--redis", tc.redis(t), "--shards", "4")
			runCrash(t, s, seed)
		})
	}
}

func runCrash(t *testing.T, s *server, seed uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	now := time.Now()
	tr := newTruth()

	const kills = 6
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		r := rand.New(rand.NewPCG(seed, 1))
		for i := 0; i < kills; i++ {
			time.Sleep(time.Duration(300+r.IntN(1200)) * time.Millisecond)
			s.stop(syscall.SIGKILL)
			s.run()
		}
	}()

	const workers = 4
	var wg sync.WaitGroup
	var seqMu sync.Mutex
	seq := 0
	nextSeq := func() int { seqMu.Lock(); defer seqMu.Unlock(); seq++; return seq }
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)+2))
			var sent []genEvent // acknowledged events, for client retries
			for req := 0; ; req++ {
				select {
				case <-killerDone:
					if req >= 60 {
						return
					}
				default:
				}
				ua := r.IntN(len(userAgents))
				if r.IntN(10) > 0 {
					ua = r.IntN(3) // mostly people
				}
				var lines [][]byte
				var evs []genEvent
				var invalid []int
				n := 1 + r.IntN(20)
				for i := 0; i < n; i++ {
					switch {
					case len(sent) > 0 && r.IntN(8) == 0:
						e := sent[r.IntN(len(sent))] // a retry: same id, same content
						if e.UA != userAgents[ua].UA {
							e = newGenEvent(r, nextSeq(), now, ua)
						}
						evs = append(evs, e)
						lines = append(lines, e.json())
					case r.IntN(15) == 0:
						invalid = append(invalid, len(lines))
						lines = append(lines, []byte(invalidLines[r.IntN(len(invalidLines))]))
					default:
						e := newGenEvent(r, nextSeq(), now, ua)
						evs = append(evs, e)
						lines = append(lines, e.json())
					}
				}
				var body []byte
				if r.IntN(2) == 0 || hasTorn(lines) {
					body = bytes.Join(lines, []byte("\n"))
				} else {
					body = append(append([]byte("["), bytes.Join(lines, []byte(","))...), ']')
				}
				code, res, err := s.post(ctx, body, userAgents[ua].UA)
				if err != nil {
					errs <- err
					return
				}
				if len(evs) > 0 && code != 202 || len(evs) == 0 && code != 400 {
					t.Errorf("collect answered %d for %d valid and %d invalid lines: %+v", code, len(evs), len(invalid), res)
					return
				}
				if res.Accepted != len(evs) || len(res.Rejected) != len(invalid) {
					t.Errorf("collect accepted %d rejected %d, want %d and %d (%+v)", res.Accepted, len(res.Rejected), len(evs), len(invalid), res.Rejected)
					return
				}
				for i, rj := range res.Rejected {
					if rj.Index != invalid[i] {
						t.Errorf("rejected index %d, want %d", rj.Index, invalid[i])
					}
				}
				for _, e := range evs {
					tr.add(e)
					sent = append(sent, e)
				}
				time.Sleep(time.Duration(10+r.IntN(40)) * time.Millisecond)
			}
		}(w)
	}
	wg.Wait()
	<-killerDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if t.Failed() {
		return
	}
	t.Logf("%d distinct events acknowledged across %d starts", tr.size(), s.start)

	var last string
	for {
		var err error
		last, err = checkAll(ctx, t, s, tr, now)
		if err != nil {
			t.Fatal(err)
		}
		if last == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("aggregates differ from the ground truth: %s", last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func hasTorn(lines [][]byte) bool {
	for _, l := range lines {
		if bytes.HasSuffix(l, []byte(",")) {
			return true
		}
	}
	return false
}

// checkAll queries every metric at every step and returns the differences
// from the truth ("" when none); an error is a query that failed.
func checkAll(ctx context.Context, t *testing.T, s *server, tr *truth, now time.Time) (string, error) {
	t.Helper()
	to := time.Now().UnixMilli()
	var diffs []string
	for _, site := range sites {
		for _, st := range steps {
			from := now.Add(-time.Hour).UnixMilli() - 5*60_000
			from -= from % st.Width
			for _, cq := range countQueries {
				var got queryResult
				if err := s.get(ctx, "/v1/query", queryValues(site, cq.Metric, st.Name, cq.Dim, from, to), &got); err != nil {
					return "", err
				}
				if d := tr.diffCounts(site, cq.Metric, st.Name, cq.Dim, from, to, got); d != "" {
					diffs = append(diffs, d)
				}
			}
			var got queryResult
			if err := s.get(ctx, "/v1/query", queryValues(site, "visitors", st.Name, "", from, to), &got); err != nil {
				return "", err
			}
			if d := tr.diffUniques(site, st.Name, from, to, got); d != "" {
				diffs = append(diffs, d)
			}
		}
	}
	return strings.Join(diffs, "\n"), nil
}
