package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/pulsehq/pulse/loadgen/bench"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure Pulse on this machine (load only to 127.0.0.1, bounded in time)",
		Commands: []*cli.Command{
			{
				Name:  "ingest",
				Usage: "beacon ingest through the durable path, beside a bare net/http handler answering 204",
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "duration", Value: 5 * time.Second, Usage: "length of each phase"},
					&cli.IntFlag{Name: "concurrency", Value: 64, Usage: "client connections"},
					&cli.IntFlag{Name: "batch", Value: 50, Usage: "events per request in the batch phase"},
					&cli.StringFlag{Name: "roles", Value: "ingest", Usage: "roles of the measured pulse serve"},
					&cli.StringFlag{Name: "redis", Value: "embedded", Usage: "--redis of the measured pulse serve"},
					&cli.StringFlag{Name: "admin-addr", Usage: "--admin-addr of the measured pulse serve, to profile it under the load (pprof)"},
				},
				Action: func(ctx context.Context, c *cli.Command) error {
					env, err := benchEnv()
					if err != nil {
						return err
					}
					return bench.Ingest(ctx, env, bench.IngestConfig{
						Duration:    c.Duration("duration"),
						Concurrency: int(c.Int("concurrency")),
						Batch:       int(c.Int("batch")),
						Roles:       c.String("roles"),
						Redis:       c.String("redis"),
						AdminAddr:   c.String("admin-addr"),
					})
				},
			},
			{
				Name:   "baseline-server",
				Usage:  "a bare net/http server answering 204 (the ingest baseline)",
				Hidden: true,
				Flags:  []cli.Flag{&cli.StringFlag{Name: "addr", Value: "127.0.0.1:0"}},
				Action: func(ctx context.Context, c *cli.Command) error {
					return bench.ServeBaseline(ctx, c.String("addr"))
				},
			},
			benchFreshnessCommand(),
			benchFanoutCommand(),
			benchE2ECommand(),
		},
	}
}

func benchFreshnessCommand() *cli.Command {
	return &cli.Command{
		Name:  "freshness",
		Usage: "time from an event's 202 to the first delta that covers it, at sustained ingest rates (one subscriber, embedded mode)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "rate", Value: "10000,50000", Usage: "comma-separated ingest rates, events/s"},
			&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "length of each rate's run"},
			&cli.IntFlag{Name: "batch", Value: 50, Usage: "events per request"},
			&cli.IntFlag{Name: "concurrency", Value: 32, Usage: "ingest connections"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			rates, err := bench.ParseRates(c.String("rate"))
			if err != nil {
				return err
			}
			env, err := benchEnv()
			if err != nil {
				return err
			}
			return bench.Freshness(ctx, env, bench.FreshnessConfig{
				Rates:       rates,
				Duration:    c.Duration("duration"),
				Batch:       int(c.Int("batch")),
				Concurrency: int(c.Int("concurrency")),
			})
		},
	}
}

func benchFanoutCommand() *cli.Command {
	return &cli.Command{
		Name:  "fanout",
		Usage: "many WebSocket subscribers to one metric: delivered messages/s, latency, RSS per connection; Centrifugo as a baseline",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "clients", Value: 10000, Usage: "concurrent subscribers"},
			&cli.FloatFlag{Name: "rate", Value: bench.PushFlushRate, Usage: fmt.Sprintf("published messages/s per channel (Pulse: ingest requests/s; at most %d deltas/s reach a subscriber)", bench.PushFlushRate)},
			&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "length of the publishing phase"},
			&cli.IntFlag{Name: "size", Value: 0, Usage: "bytes of a Centrifugo message frame (0: the mean size of Pulse's deltas in the same run)"},
			&cli.IntFlag{Name: "batch", Value: 5, Usage: "events per Pulse ingest request"},
			&cli.StringFlag{Name: "systems", Value: "pulse,centrifugo", Usage: "which servers to measure, in order"},
			&cli.StringFlag{Name: "centrifugo", Usage: "centrifugo binary (default $HOME/.cache/pulse/bin/centrifugo, then PATH)"},
			&cli.IntFlag{Name: "dial-concurrency", Value: 64, Usage: "WebSocket handshakes in flight while connecting"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			env, err := benchEnv()
			if err != nil {
				return err
			}
			return bench.Fanout(ctx, env, bench.FanoutConfig{
				Clients:         int(c.Int("clients")),
				Rate:            c.Float("rate"),
				Duration:        c.Duration("duration"),
				Size:            int(c.Int("size")),
				Batch:           int(c.Int("batch")),
				Systems:         strings.Split(c.String("systems"), ","),
				Centrifugo:      c.String("centrifugo"),
				DialConcurrency: int(c.Int("dial-concurrency")),
			})
		},
	}
}

// The flags of bench e2e, like those of the other bench commands, have no PULSE_*
// twins: PULSE_REDIS and PULSE_RATE mean something else to pulse serve.
func benchE2ECommand() *cli.Command {
	return &cli.Command{
		Name:  "e2e",
		Usage: "the whole default server (pulse serve, all roles) at a fixed offered rate: applied events/s, lag, freshness, RSS, CPU per event of pulse and Redis; embedded Redis beside redis-server",
		Flags: []cli.Flag{
			&cli.FloatFlag{Name: "rate", Value: 50000, Usage: "offered events/s (open loop: what finds no free connection is not sent, and counted)"},
			&cli.DurationFlag{Name: "duration", Value: 30 * time.Second, Usage: "the measured window, after the warm-up"},
			&cli.DurationFlag{Name: "warmup", Value: 5 * time.Second, Usage: "load before the measured window"},
			&cli.IntFlag{Name: "batch", Value: 50, Usage: "events per request"},
			&cli.IntFlag{Name: "concurrency", Value: 256, Usage: "keep-alive connections of the load client (a request due while all wait for an answer is not offered)"},
			&cli.StringFlag{Name: "redis", Value: "embedded,redis", Usage: "systems, in order: embedded (pulse's own Redis) and redis (a redis-server from PATH the bench starts)"},
			&cli.StringFlag{Name: "admin-addr", Usage: "--admin-addr of each measured pulse serve, to profile it under the load (pprof)"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			systems, err := bench.ParseSystems(c.String("redis"))
			if err != nil {
				return err
			}
			env, err := benchEnv()
			if err != nil {
				return err
			}
			return bench.E2E(ctx, env, bench.E2EConfig{
				Rate:        c.Float("rate"),
				Duration:    c.Duration("duration"),
				Warmup:      c.Duration("warmup"),
				Batch:       int(c.Int("batch")),
				Connections: int(c.Int("concurrency")),
				Systems:     systems,
				AdminAddr:   c.String("admin-addr"),
			})
		},
	}
}

// benchEnv measures this very binary, printing the table on stdout and
// notes on stderr.
func benchEnv() (bench.Env, error) {
	self, err := os.Executable()
	if err != nil {
		return bench.Env{}, fmt.Errorf("find the pulse binary: %w", err)
	}
	return bench.Env{Pulse: self, Out: os.Stdout, Log: os.Stderr}, nil
}
