package lease

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/redistest"
)

// BenchmarkRound measures one steady-state round (renew, heartbeat,
// rebalance with nothing to move) of an instance holding every shard, the
// Redis work each instance does every Renew.
func BenchmarkRound(b *testing.B) {
	for _, n := range []int{8, 64, 512} {
		b.Run(fmt.Sprintf("shards=%d", n), func(b *testing.B) {
			srv := redistest.Start(b)
			m, err := New(srv.Client(b), Config{Owner: "a", TTL: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			shards := names("s", n)
			list := func(context.Context) ([]string, error) { return shards, nil }
			ctx := context.Background()
			m.round(ctx, list, true)
			if got := len(m.Leases()); got != n {
				b.Fatalf("holds %d of %d shards", got, n)
			}
			b.ResetTimer()
			for b.Loop() {
				m.round(ctx, list, true)
			}
		})
	}
}
