package systemtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// abuseAttack is one attack of issue 11, run against a live server: it
// asserts its bound with t.Errorf and returns a line saying what it
// measured against which bound.
type abuseAttack struct {
	item string
	run  func(t *testing.T, ctx context.Context, s *server) string
}

// abuseAttacks are every attack of issue 11, each also the body of its
// own test (TestSiteFairness, TestKeyedSiteOrigins, ...). They use sites
// of their own, never the good traffic's demo and shop.
func abuseAttacks() []abuseAttack {
	return []abuseAttack{
		{"2. client timestamps choose archive partitions", attackHostileTS},
		{"4. one sender floods a site", attackSiteFlood(defaultSiteRate)},
		{"5. forged origins on a keyed site", attackForgedOrigin},
		{"6. unauthenticated WebSocket upgrades", attackUnauthWS},
		{"7. the read token in the log", attackTokenInLog},
		{"8. a local process on the embedded Redis", attackLocalRedis},
		{"9. a deflate bomb of empty blocks", attackDeflateBomb},
		{"10. weak and swapped secrets", attackWeakSecrets},
		{"11. a tracker's late resend", attackLateResend},
	}
}

// defaultSiteRate is pulse serve's default --rate-site.
const defaultSiteRate = 5000

// TestAbuse runs every attack of issue 11 against one pulse serve (the
// default configuration, embedded Redis included, plus what the attacks
// need: a trusted loopback proxy so attackers can have addresses of their own, a
// keyed site, a short archive flush, a dedup window short enough to wait
// past), one after another, while good
// traffic flows on other sites. Each attack asserts its bound; the good
// traffic must stay exact against its ground truth. It prints the bounds.
func TestAbuse(t *testing.T) {
	s := newServer(t, "--trusted-proxies", trustedLoopbackGW,
		"--write-keys", pagesKeysFile(t), "--archive-max-age", "1s", "--dedup-window", "10s")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	now := time.Now()
	tr := newTruth()
	// No resends of acknowledged events: with a 10 s dedup window, one
	// resent later would rightly count twice.
	good := startLoad(ctx, t, func() *server { return s }, tr, now, loadConfig{Seed: 11, Workers: 2, Pause: 20 * time.Millisecond, IDPrefix: "good"})
	var rows []string
	for _, a := range abuseAttacks() {
		t.Run(a.item, func(t *testing.T) {
			rows = append(rows, fmt.Sprintf("  %-50s %s", a.item, a.run(t, ctx, s)))
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
	rows = append(rows, fmt.Sprintf("  %-50s %d events acknowledged (%d requests 429), %d counted, every aggregate exact",
		"good traffic beside the attacks", tr.size(), good.limited.Load(), got))
	if got != int64(tr.size()) {
		t.Errorf("good traffic: %d acknowledged, %d counted", tr.size(), got)
	}
	fmt.Printf("\nabuse: every attack of issue 11 against one pulse serve\n%s\n", strings.Join(rows, "\n"))
}
