package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/internal/redisinfo"
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
	return redisinfo.CPU(info), nil
}

// resetStats zeroes INFO commandstats, so that commandStats covers what
// followed.
func (r *redisServer) resetStats(ctx context.Context) error {
	if err := r.rdb.ConfigResetStat(ctx).Err(); err != nil {
		return fmt.Errorf("CONFIG RESETSTAT on %s: %w", r.addr, err)
	}
	return nil
}

// commandStats returns the commands redis-server ran since the last
// resetStats, the most time first (commands a script runs count under
// their own names as well as under the script's EVALSHA).
func (r *redisServer) commandStats(ctx context.Context) ([]redisinfo.CommandStat, error) {
	info, err := r.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats of %s: %w", r.addr, err)
	}
	return redisinfo.CommandStats(info), nil
}
