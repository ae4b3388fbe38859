package redistest

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
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
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "cmdstat_"):
			_, rest, _ := strings.Cut(line, ":calls=")
			n, _, _ := strings.Cut(rest, ",")
			v, _ := strconv.ParseInt(n, 10, 64)
			calls += v
		case strings.HasPrefix(line, "used_cpu_sys:"), strings.HasPrefix(line, "used_cpu_user:"):
			_, v, _ := strings.Cut(line, ":")
			f, _ := strconv.ParseFloat(v, 64)
			cpuSeconds += f
		}
	}
	return calls, cpuSeconds
}
