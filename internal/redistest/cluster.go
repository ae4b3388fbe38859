package redistest

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartCluster runs a Redis Cluster of n masters (real redis-servers made
// into a cluster with redis-cli --cluster create) and returns a client for
// it, closed when the test ends.
func StartCluster(tb testing.TB, n int) *redis.ClusterClient {
	tb.Helper()
	return CreateCluster(tb, StartClusterNodes(tb, n))
}

// StartClusterNodes runs n redis-servers in cluster mode that do not form
// a cluster yet: each answers CLUSTERDOWN until CreateCluster joins them,
// as a fleet's Redis does while it settles.
func StartClusterNodes(tb testing.TB, n int) []string {
	tb.Helper()
	var addrs []string
	for range n {
		s := Start(tb, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
		addrs = append(addrs, s.Addr)
	}
	return addrs
}

// CreateCluster makes the nodes at addrs one cluster (redis-cli --cluster
// create, no replicas) and returns a client for it once every node sees
// the cluster ok, closed when the test ends.
func CreateCluster(tb testing.TB, addrs []string) *redis.ClusterClient {
	tb.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		tb.Fatalf("redis-cli not found in PATH (run ./scripts/test.sh, which installs it): %v", err)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		tb.Fatalf("create cluster: %v\n%s", err, out)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	tb.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Every node must see the cluster ok (one node agrees before the
		// others do, and a command routed to a late one gets CLUSTERDOWN).
		var mu sync.Mutex // ForEachMaster calls concurrently
		var info string
		err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			i, err := m.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(i, "cluster_state:ok") {
				mu.Lock()
				info = i
				mu.Unlock()
				return errors.New("cluster_state is not ok on " + m.Options().Addr)
			}
			return nil
		})
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			tb.Fatalf("cluster not ready: %v %s", err, info)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
