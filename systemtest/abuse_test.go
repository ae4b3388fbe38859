package systemtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/redistest"
)

// abuseAttack is one attack of issue 11, run against a live server: it
// asserts its bound with t.Errorf and returns a line saying what it
// measured against which bound.
type abuseAttack struct {
	item string
	run  func(t *testing.T, ctx context.Context, s *server) string
}

// abuseServer is a configuration the attacks of issue 11 run against,
// and the attacks that run against it. Attacks use sites of their own,
// never the good traffic's demo and shop.
type abuseServer struct {
	name    string
	redis   bool // on a redis-server of its own, whose keys the attacks read
	flags   []string
	attacks []abuseAttack
}

// defaultSiteRate is pulse serve's default --rate-site.
const defaultSiteRate = 5000

// abuseServers are every attack of issue 11, each also the body of a test
// of its own (TestSiteFairness, TestKeyedSiteOrigins, TestSites, ...), on
// the configurations they need: the embedded default as a new user runs
// it, production's redis-server with its sites listed, and any site
// accepted within the caps.
func abuseServers() []abuseServer {
	return []abuseServer{
		{
			name: "embedded (the default)",
			// A trusted loopback proxy so that attackers have addresses of
			// their own; a keyed site; a short archive flush; a dedup window
			// short enough to wait past.
			flags: []string{"--trusted-proxies", trustedLoopbackGW, "--write-keys", "", "--archive-max-age", "1s", "--dedup-window", "10s"},
			attacks: []abuseAttack{
				{"2. client timestamps choose archive partitions", attackHostileTS},
				{"4. one sender floods a site", attackSiteFlood(defaultSiteRate)},
				{"5. forged origins on a keyed site", attackForgedOrigin},
				{"6. unauthenticated WebSocket upgrades", attackUnauthWS},
				{"7. the read token in the log", attackTokenInLog},
				{"8. a local process on the embedded Redis", attackLocalRedis},
				{"9. a deflate bomb of empty blocks", attackDeflateBomb},
				{"10. weak and swapped secrets", attackWeakSecrets},
				{"11. a tracker's late resend", attackLateResend},
			},
		},
		{
			name:  "redis-server, sites listed",
			redis: true,
			flags: []string{"--sites", "demo,shop,known,quiet," + longSite + "," + longGoodSite, "--site-idle-ttl", "5s"},
			attacks: []abuseAttack{
				{"1. unknown sites", attackUnknownSites},
				{"3. long and many dimension values", attackLongValues},
				{"1. a quiet site's keys", attackQuietSite},
				{"1. an admin adds a site", adminAddsSite},
			},
		},
		{
			name:  "redis-server, any site",
			redis: true,
			flags: []string{"--sites", "*", "--sites-max", "30", "--sites-new-rate", "600000"},
			attacks: []abuseAttack{
				{"1. new sites past --sites-max", attackSiteCap},
			},
		},
	}
}

// TestAbuse runs every attack of issue 11 against the built binary, on
// each configuration of abuseServers in turn, one attack after another,
// while good traffic flows on other sites of the same server. Each attack
// asserts its bound; the good traffic must end exact against its ground
// truth. It prints the bounds.
func TestAbuse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var rows []string
	for _, cfg := range abuseServers() {
		t.Run(cfg.name, func(t *testing.T) {
			rows = append(rows, cfg.name+":")
			rows = append(rows, runAbuse(t, ctx, cfg)...)
		})
	}
	fmt.Printf("\nabuse: every attack of issue 11 against pulse serve, beside good traffic\n%s\n", strings.Join(rows, "\n"))
}

// runAbuse starts cfg's server and good traffic, runs its attacks and
// returns a row per attack and one for the good traffic.
func runAbuse(t *testing.T, ctx context.Context, cfg abuseServer) []string {
	flags := slices.Clone(cfg.flags)
	if i := slices.Index(flags, "--write-keys"); i >= 0 {
		flags[i+1] = pagesKeysFile(t)
	}
	if cfg.redis {
		flags = append([]string{"--redis", redistest.Start(t).URL()}, flags...)
	}
	s := newServer(t, flags...)
	now := time.Now()
	tr := newTruth()
	// No resends of acknowledged events: with a 10 s dedup window, one
	// resent later would rightly count twice.
	good := startLoad(ctx, t, func() *server { return s }, tr, now, loadConfig{Seed: 11, Workers: 2, Pause: 20 * time.Millisecond, IDPrefix: "good"})
	// The good traffic's sites are known before the attacks start (with
	// --sites '*' they take their places under --sites-max first).
	waitFor(ctx, t, "the good traffic's first requests", func() bool { return good.requests.Load() >= 10 })
	var rows []string
	for _, a := range cfg.attacks {
		t.Run(a.item, func(t *testing.T) {
			rows = append(rows, fmt.Sprintf("  %-48s %s", a.item, a.run(t, ctx, s)))
		})
	}
	if err := good.Stop(); err != nil {
		t.Fatalf("good traffic: %v", err)
	}
	waitExact(ctx, t, func() *server { return s }, tr, now)
	got, err := counted(ctx, s, now)
	if err != nil {
		t.Fatal(err)
	}
	if got != int64(tr.size()) {
		t.Errorf("good traffic: %d acknowledged, %d counted", tr.size(), got)
	}
	return append(rows, fmt.Sprintf("  %-48s %d events acknowledged (%d requests 429), %d counted, every aggregate exact",
		"good traffic beside the attacks", tr.size(), good.limited.Load(), got))
}
