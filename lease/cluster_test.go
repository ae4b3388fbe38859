package lease

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/internal/redistest"
)

// startCluster runs a three-master Redis Cluster of real redis-servers.
func startCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	var addrs []string
	for range 3 {
		s := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
		addrs = append(addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("create cluster: %v\n%s", err, out)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			if err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
				return m.Ping(ctx).Err()
			}); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready: %v %s", err, info)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

// TestCluster runs a group on Redis Cluster: every script touches several
// keys, which Redis Cluster only allows within one slot (CROSSSLOT).
func TestCluster(t *testing.T) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not installed")
	}
	c := startCluster(t)
	g := newGroup(t, func() redis.UniversalClient { return c }, 8)
	ins := []*instance{g.start("a", Config{}, consumerOpts{}), g.start("b", Config{}, consumerOpts{})}
	g.waitSplit(ins, 4, 4)
	ins = append(ins, g.start("c", Config{}, consumerOpts{}))
	g.waitSplit(ins, 3, 3, 2)

	ctx := context.Background()
	st := ins[0].m.st
	slots := map[int64]bool{}
	for _, k := range []string{st.membersKey(), st.fenceKey(), st.leaseKey("s00"), st.leaseKey("s07")} {
		slot, err := c.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		slots[slot] = true
	}
	if len(slots) != 1 {
		t.Fatalf("lease keys span slots %v", slots)
	}
	if n, err := c.Exists(ctx, st.leaseKey("s00")).Result(); err != nil || n != 1 {
		t.Fatalf("lease key %s: exists %d, %v", st.leaseKey("s00"), n, err)
	}
}
