package lease

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/internal/redistest"
)

// TestCluster runs a group on Redis Cluster: every script touches several
// keys, which Redis Cluster only allows within one slot (CROSSSLOT).
func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	g := newGroup(t, func() redis.UniversalClient { return c }, 8)
	ins := []*instance{g.start("a", Config{}, consumerOpts{}), g.start("b", Config{}, consumerOpts{})}
	g.waitSplit(ins, 4, 4)
	ins = append(ins, g.start("c", Config{}, consumerOpts{}))
	g.waitSplit(ins, 3, 3, 2)

	ctx := context.Background()
	st := ins[0].m.st
	slots := map[int64]bool{}
	for _, k := range []string{st.keys.LeaseMembers(), st.keys.LeaseFence(), st.keys.LeaseShard("s00"), st.keys.LeaseShard("s07")} {
		slot, err := c.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		slots[slot] = true
	}
	if len(slots) != 1 {
		t.Fatalf("lease keys span slots %v", slots)
	}
	if n, err := c.Exists(ctx, st.keys.LeaseShard("s00")).Result(); err != nil || n != 1 {
		t.Fatalf("lease key %s: exists %d, %v", st.keys.LeaseShard("s00"), n, err)
	}
}
