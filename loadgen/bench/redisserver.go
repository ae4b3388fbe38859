package bench

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server child the bench started, and a client of
// it for INFO.
type redisServer struct {
	*child
	rdb *redis.Client
	dir string
}

// startRedisServer runs redis-server from PATH on a free loopback port
// without persistence (--save ” --appendonly no: the bench measures the
// live path, and a snapshot would add its fork to the figures) and waits
// until it answers PING.
func startRedisServer(ctx context.Context) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found on PATH: install it (apt-get install redis-server) or measure only --redis embedded")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pulse-bench-redis-")
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.CommandContext(ctx, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	r := &redisServer{child: &child{cmd: cmd, addr: addr}, rdb: redis.NewClient(&redis.Options{Addr: addr}), dir: dir}
	var last error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if last = r.rdb.Ping(ctx).Err(); last == nil {
			return r, nil
		}
	}
	r.stop()
	return nil, fmt.Errorf("redis-server on %s did not answer PING: %w", addr, last)
}

// url is the --redis of a pulse serve on r.
func (r *redisServer) url() string { return "redis://" + r.addr + "/0" }

func (r *redisServer) stop() {
	r.rdb.Close()
	r.child.stop()
	os.RemoveAll(r.dir)
}

// cpu returns the CPU time redis-server has used, user + system, from INFO
// cpu.
func (r *redisServer) cpu(ctx context.Context) (time.Duration, error) {
	info, err := r.rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, fmt.Errorf("INFO cpu of %s: %w", r.addr, err)
	}
	return parseRedisCPU(info), nil
}

// parseRedisCPU sums used_cpu_sys and used_cpu_user (seconds) of an INFO
// answer.
func parseRedisCPU(info string) time.Duration {
	var secs float64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			secs += f
		}
	}
	return time.Duration(secs * float64(time.Second))
}

// resetStats zeroes INFO commandstats, so that commandStats covers what
// followed.
func (r *redisServer) resetStats(ctx context.Context) error {
	if err := r.rdb.ConfigResetStat(ctx).Err(); err != nil {
		return fmt.Errorf("CONFIG RESETSTAT on %s: %w", r.addr, err)
	}
	return nil
}

// commandStat is one line of INFO commandstats.
type commandStat struct {
	name        string
	calls, usec int64
}

// commandStats returns the commands redis-server ran since the last
// resetStats, the most time first (commands a script runs count under
// their own names as well as under the script's EVALSHA).
func (r *redisServer) commandStats(ctx context.Context) ([]commandStat, error) {
	info, err := r.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats of %s: %w", r.addr, err)
	}
	return parseCommandStats(info), nil
}

// parseCommandStats reads lines like
// cmdstat_evalsha:calls=80,usec=920000,usec_per_call=11500.00,rejected_calls=0,failed_calls=0
// sorted by usec, most first.
func parseCommandStats(info string) []commandStat {
	var out []commandStat
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		name, fields, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		s := commandStat{name: name}
		for f := range strings.SplitSeq(fields, ",") {
			k, v, _ := strings.Cut(f, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				s.calls = n
			case "usec":
				s.usec = n
			}
		}
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b commandStat) int { return cmp.Compare(b.usec, a.usec) })
	return out
}
