package redistest

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/internal/redisinfo"
)

// Counters returns the server's total command calls (scripts' inner
// commands included) and its CPU seconds (user + system), from INFO
// commandstats and INFO cpu: what benchmarks diff to report Redis commands
// and CPU per event.
func Counters(tb testing.TB, rdb redis.UniversalClient) (calls int64, cpuSeconds float64) {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "commandstats", "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range redisinfo.CommandStats(info) {
		calls += c.Calls
	}
	return calls, redisinfo.CPU(info).Seconds()
}
