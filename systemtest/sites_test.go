package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/redisagg"
)

// serverRedis connects to the Redis of s (its --redis flag, which must
// name a redis:// server: the embedded one does not show its keys).
func serverRedis(t *testing.T, s *server) *redis.Client {
	t.Helper()
	for i, a := range s.args {
		if a == "--redis" && i+1 < len(s.args) && strings.HasPrefix(s.args[i+1], "redis://") {
			opt, err := redis.ParseURL(s.args[i+1])
			if err != nil {
				t.Fatal(err)
			}
			c := redis.NewClient(opt)
			t.Cleanup(func() { c.Close() })
			return c
		}
	}
	t.Fatal("the server has no --redis redis://...: the attack reads its keys")
	return nil
}

// usedMemory is INFO memory's used_memory, in bytes.
func usedMemory(ctx context.Context, t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("INFO memory has no used_memory")
	return 0
}

// countKeys counts the keys matching pattern.
func countKeys(ctx context.Context, t *testing.T, rdb *redis.Client, pattern string) int {
	t.Helper()
	n := 0
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// siteBody is one pageview for each of sites, with ids prefix000, ...
func siteBody(prefix string, sites []string) []byte {
	var b strings.Builder
	for i, site := range sites {
		fmt.Fprintf(&b, `{"id":"%s%03d","site":%q,"type":"pageview"}`+"\n", prefix, i, site)
	}
	return []byte(b.String())
}

// attackUnknownSites sends 20 requests of 33 KB, each naming 500 new site
// ids (the request of issue 11 that made 12,500 keys), to a server whose
// --sites does not list them (its --redis must be a redis:// server, and
// known one of its sites): every event is refused on its own, naming its
// site and how to add it, and no key of those sites exists afterwards,
// nor any key but known's new buckets outside the good traffic's sites,
// while known's events still count.
func attackUnknownSites(t *testing.T, ctx context.Context, s *server) string {
	rdb := serverRedis(t, s)
	before, err := s.pageviews(ctx, "known")
	if err != nil {
		t.Fatal(err)
	}
	s.sendGood(t, ctx, "known", "unk-warm", 1, nil)
	s.waitPageviews(t, ctx, "known", before+1)
	keys0, mem0 := keysOutside(ctx, t, rdb, sites), usedMemory(ctx, t, rdb)

	const requests, perRequest = 20, 500
	size := 0
	for r := range requests {
		ids := make([]string, perRequest)
		for i := range ids {
			ids[i] = fmt.Sprintf("attacker-site-%02d-%03d", r, i)
		}
		body := siteBody(fmt.Sprintf("unk%02d-", r), ids) // 67 bytes an event
		size = len(body)
		status, res, err := s.post(ctx, body, "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0")
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusForbidden || res.Accepted != 0 || len(res.Rejected) != perRequest {
			t.Fatalf("request %d: %d, %d accepted, %d rejected; want 403 and all %d refused", r, status, res.Accepted, len(res.Rejected), perRequest)
		}
		for _, rj := range res.Rejected {
			site := ids[rj.Index]
			if !strings.Contains(rj.Error, strconv.Quote(site)) || !strings.Contains(rj.Error, "--sites") || !strings.Contains(rj.Error, "pulse sites add "+site) {
				t.Fatalf("refusal of %s: %q; want it to name the site, --sites and pulse sites add", site, rj.Error)
			}
		}
	}
	// demo's next event counts: the server still aggregates (anything
	// accepted before it would have been applied too).
	s.sendGood(t, ctx, "known", "unk-after", 1, nil)
	s.waitPageviews(t, ctx, "known", before+2)
	keys1, mem1 := keysOutside(ctx, t, rdb, sites), usedMemory(ctx, t, rdb)
	if n := countKeys(ctx, t, rdb, "*attacker-site-*"); n != 0 {
		t.Errorf("%d keys name an unknown site, want 0", n)
	}
	// known's one event may open new buckets: at most one site's 25 keys.
	if keys1-keys0 > 25 {
		t.Errorf("keys outside the good traffic's sites went from %d to %d, want at most 25 more (known's new buckets)", keys0, keys1)
	}
	if got := s.metricValue(t, `pulse_ingest_rejected_total{reason="site_not_allowed"}`); got < requests*perRequest {
		t.Errorf(`pulse_ingest_rejected_total{reason="site_not_allowed"} = %g, want at least %d`, got, requests*perRequest)
	}
	return fmt.Sprintf("unknown sites: %d requests of %d bytes naming %d new sites each: all refused, 0 keys of theirs; keys outside the good traffic's sites %d -> %d (bound +25), used_memory %d -> %d bytes (with the good traffic's)",
		requests, size, perRequest, keys0, keys1, mem0, mem1)
}

// keysOutside counts the keys that are not of the sites given (those of
// the good traffic beside an attack): each site's keys carry its tag.
func keysOutside(ctx context.Context, t *testing.T, rdb *redis.Client, sites []string) int {
	t.Helper()
	n := 0
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		if !slices.ContainsFunc(sites, func(s string) bool { return strings.Contains(iter.Val(), "{"+s+"}") }) {
			n++
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// adminAddsSite: a site the server does not know is refused until an
// admin adds it with `pulse sites add`; then its events count.
func adminAddsSite(t *testing.T, ctx context.Context, s *server) string {
	const site = "late-site"
	body := siteBody("late", []string{site})
	status, res, err := s.post(ctx, body, "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0")
	if err != nil || status != http.StatusForbidden || res.Accepted != 0 {
		t.Fatalf("event of %s before it was added: %d %+v %v, want 403", site, status, res, err)
	}
	out, err := exec.CommandContext(ctx, pulseBin, "sites", "add", site, "--server", "http://"+s.addr, "--admin-token", adminToken).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "site "+site+" added") {
		t.Fatalf("pulse sites add %s: %v\n%s", site, err, out)
	}
	status, res, err = s.post(ctx, body, "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0")
	if err != nil || status != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("event of %s after it was added: %d %+v %v, want 202", site, status, res, err)
	}
	s.waitPageviews(t, ctx, site, 1)
	out, err = exec.CommandContext(ctx, pulseBin, "sites", "--server", "http://"+s.addr, "--admin-token", adminToken).CombinedOutput()
	if err != nil || !strings.Contains(string(out), site) {
		t.Errorf("pulse sites does not list %s: %v\n%s", site, err, out)
	}
	return "admin adds a site: refused (403) before pulse sites add, then accepted and counted"
}

// attackSiteCap sends events of more new sites than the server's
// --sites-max (it must run --sites '*' with a small --sites-max and a
// --sites-new-rate high enough that the cap, not the rate, decides; and a
// redis:// --redis): exactly the room left is admitted, the rest refused
// with the cap's reason, counted, and without keys.
func attackSiteCap(t *testing.T, ctx context.Context, s *server) string {
	rdb := serverRedis(t, s)
	var list struct {
		Open   bool     `json:"open"`
		Max    int      `json:"max"`
		Shared []string `json:"shared"`
	}
	if err := adminGet(ctx, s, "/v1/admin/sites", &list); err != nil {
		t.Fatal(err)
	}
	if !list.Open {
		t.Fatal("attackSiteCap needs a server with --sites '*'")
	}
	room := list.Max - len(list.Shared)
	const extra = 20
	pending := map[string]bool{}
	for i := range room + extra {
		pending[fmt.Sprintf("cap-%04d", i)] = true
	}
	admitted, capped := map[string]bool{}, map[string]bool{}
	capRefusals0 := s.metricValue(t, `pulse_ingest_rejected_total{reason="site_cap"}`)
	admitted0 := s.metricValue(t, "pulse_sites_admitted_total")
	// New sites beyond the node's burst are refused for the rate and sent
	// again, as a tracker's next page would; the cap refusals are final.
	for round := 0; len(pending) > 0; round++ {
		if round == 200 {
			t.Fatalf("%d sites neither admitted nor refused for the cap after %d rounds", len(pending), round)
		}
		var ids []string
		for site := range pending {
			ids = append(ids, site)
		}
		_, res, err := s.post(ctx, siteBody(fmt.Sprintf("cap%d-", round), ids), "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0")
		if err != nil {
			t.Fatal(err)
		}
		refused := map[int]string{}
		for _, rj := range res.Rejected {
			refused[rj.Index] = rj.Error
		}
		for i, site := range ids {
			msg, no := refused[i]
			switch {
			case !no:
				admitted[site] = true
				delete(pending, site)
			case strings.Contains(msg, "--sites-max"):
				capped[site] = true
				delete(pending, site)
			case !strings.Contains(msg, "--sites-new-rate"):
				t.Fatalf("refusal of %s: %q, want the cap or the rate of new sites", site, msg)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(admitted) != room || len(capped) != extra {
		t.Errorf("%d new sites admitted, %d refused for the cap; want %d and %d", len(admitted), len(capped), room, extra)
	}
	if n := rdb.SCard(ctx, redisagg.Keys{}.Sites()).Val(); n != int64(list.Max) {
		t.Errorf("the shared site set holds %d sites, want --sites-max %d", n, list.Max)
	}
	if got := s.metricValue(t, "pulse_sites_admitted_total") - admitted0; got != float64(len(admitted)) {
		t.Errorf("pulse_sites_admitted_total rose by %g, want %d", got, len(admitted))
	}
	capRefusals := s.metricValue(t, `pulse_ingest_rejected_total{reason="site_cap"}`) - capRefusals0
	if capRefusals < extra {
		t.Errorf(`pulse_ingest_rejected_total{reason="site_cap"} rose by %g, want at least %d`, capRefusals, extra)
	}
	for site := range admitted {
		s.waitPageviews(t, ctx, site, 1)
		break
	}
	for site := range capped {
		if n := countKeys(ctx, t, rdb, "*{"+site+"}*"); n != 0 {
			t.Errorf("refused site %s has %d keys, want 0", site, n)
		}
	}
	return fmt.Sprintf("any site, capped: %d new sites sent to --sites-max %d: %d admitted, %d refused (site_cap %g), refused sites have 0 keys",
		room+extra, list.Max, len(admitted), len(capped), capRefusals)
}

// attackQuietSite: with a short --site-idle-ttl (the server must run one,
// list site quiet and use a redis:// --redis), a site's checkpoint and
// delta-log keys vanish once it goes quiet; its buckets stay, to expire
// with their retention.
func attackQuietSite(t *testing.T, ctx context.Context, s *server) string {
	rdb := serverRedis(t, s)
	s.sendGood(t, ctx, "quiet", "quiet", 3, nil)
	s.waitPageviews(t, ctx, "quiet", 3)
	// Patterns, not keys: the layout is redisagg's (docs/redis-keys.md).
	idle := []string{"*{quiet}:ck", "*{quiet}:dseq:*", "*{quiet}:dlog:*"}
	present := 0
	for _, p := range idle {
		present += countKeys(ctx, t, rdb, p)
	}
	if present < 3 {
		t.Fatalf("%d checkpoint and delta-log keys of site quiet after its events, want at least 3", present)
	}
	start := time.Now()
	for left := present; left > 0; {
		if ctx.Err() != nil {
			t.Fatalf("%d idle keys of site quiet never expired", left)
		}
		time.Sleep(100 * time.Millisecond)
		left = 0
		for _, p := range idle {
			left += countKeys(ctx, t, rdb, p)
		}
	}
	gone := time.Since(start)
	if n := countKeys(ctx, t, rdb, "*{quiet}:c:*"); n == 0 {
		t.Error("the buckets of site quiet expired with the idle keys; they keep their retention")
	}
	return fmt.Sprintf("quiet site: its %d checkpoint and delta-log keys expired %.1fs after its last event (--site-idle-ttl 5s); buckets kept",
		present, gone.Seconds())
}
