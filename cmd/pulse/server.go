package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/pulsehq/pulse/aggregator"
	"github.com/pulsehq/pulse/ingest"
	"github.com/pulsehq/pulse/internal/outbound"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/push"
	"github.com/pulsehq/pulse/ratelimit"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/stream"
	"github.com/pulsehq/pulse/stream/kinesis"
	"github.com/pulsehq/pulse/stream/local"
	"github.com/pulsehq/pulse/web"
)

// serve wires the parts for the roles asked and runs them until SIGINT or
// SIGTERM. Start order: stores, stream, workers, then the HTTP listener;
// stop order is the reverse: stop accepting and drain requests (every 202
// already answered is durable), then stop the workers (the aggregator
// commits only whole batches, so stopping anywhere is safe), then close the
// stream and the stores.
func serve(parent context.Context, cfg serveConfig, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := os.MkdirAll(cfg.Data, 0o755); err != nil {
		return fmt.Errorf("create data dir %s: %w", cfg.Data, err)
	}
	readTok, err := loadOrCreateToken(cfg.ReadToken, cfg.Data, "read-token")
	if err != nil {
		return err
	}
	adminTok, err := loadOrCreateToken(cfg.AdminToken, cfg.Data, "admin-token")
	if err != nil {
		return err
	}
	tokens, err := buildTokens(cfg.Harden, readTok, adminTok, log)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	cat, err := loadCatalog(cfg.MetricsConfig)
	if err != nil {
		return err
	}
	limiter := ratelimit.New(ratelimit.Config{
		PerIP: rateLimit(cfg.RateIP), PerSite: rateLimit(cfg.RateSite),
		TrustedProxies: cfg.TrustedProxies, MaxConnsPerIP: cfg.Harden.MaxConnsPerIP, Registerer: reg,
	})

	// workers run until the HTTP server has drained; then they are stopped.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	work, workCtx := errgroup.WithContext(workCtx)

	rdb, closeRedis, err := openRedis(workCtx, cfg.Redis, work, log)
	if err != nil {
		return err
	}
	defer closeRedis()

	// A push-only node reads Redis alone and needs no stream.
	var st streamBackend
	var pub ingest.Publisher
	if cfg.Roles["ingest"] || cfg.Roles["aggregate"] || cfg.Roles["archive"] {
		// Kinesis registers pulse_kinesis_* per reader; the archive role
		// opens a second one labelled reader="archive", and one metric
		// name must have one label set, so this one is reader="main".
		var streamReg prometheus.Registerer = reg
		if strings.HasPrefix(cfg.Stream, "kinesis://") {
			streamReg = prometheus.WrapRegistererWith(prometheus.Labels{"reader": "main"}, reg)
		}
		if st, pub, err = openStream(ctx, cfg, cat, log.With("part", "stream"), streamReg); err != nil {
			return err
		}
		pub = newTimedPublisher(pub, streamBackendName(cfg.Stream), reg)
		defer st.Close()
		work.Go(func() error { return st.Run(workCtx) })
	}

	// ns follows the current namespace (docs/architecture.md, "Namespaces"):
	// queries, push and the live aggregator read it, admin jobs build others.
	ns, err := startNamespaces(ctx, workCtx, work, cfg, rdb, st, log, reg)
	if err != nil {
		return err
	}
	registerOverflow(reg, func() redisagg.Stats { return ns.Current().store.Stats() })

	if cfg.Roles["archive"] {
		// The archiver reads at its own pace: on Kinesis it gets its own
		// reader, since shard iterators are per reader position.
		src := st
		if strings.HasPrefix(cfg.Stream, "kinesis://") {
			// It polls: a bulk reader minutes behind gains nothing from
			// push, and it has the shards' shared 2 MB/s to itself while
			// the main reader uses enhanced fan-out (docs/scaling.md).
			acfg := cfg
			acfg.KinesisEFO = ""
			ast, _, err := openStream(ctx, acfg, cat, log.With("part", "archive-stream"), prometheus.WrapRegistererWith(prometheus.Labels{"reader": "archive"}, reg))
			if err != nil {
				return err
			}
			defer ast.Close()
			src = ast
		}
		if err := startArchiver(workCtx, work, cfg, src, ns.arch, ns.archCk, rdb, log.With("role", "archive"), reg); err != nil {
			return err
		}
	}

	gin.SetMode(gin.ReleaseMode)
	router := gin.New()
	router.Use(gin.Recovery())
	router.ContextWithFallback = true

	if cfg.Roles["ingest"] {
		icfg := ingest.Config{Sites: limiter, MaxInFlight: cfg.MaxInFlight, Logger: log.With("role", "ingest"), Registerer: reg}
		if err := ingestAccess(cfg.Harden, &icfg, log); err != nil {
			return err
		}
		ingest.New(pub, icfg).Register(router.Group("/", limiter.Middleware()))
	}
	reads := router.Group("/", limiter.Middleware(), tokens.RequireRead())
	for _, p := range []string{"/v1/metrics", "/v1/query", "/v1/top"} {
		reads.GET(p, ns.QueryHandler())
	}
	ns.registerAdmin(router.Group("/", limiter.Middleware(), tokens.RequireAdmin()))

	if cfg.Roles["push"] {
		hub := push.New(ns, push.NewRedisSource(rdb, ns), push.Config{
			AllowedOrigins: cfg.AllowedOrigins,
			Tokens:         tokens,
			Catalog:        ns.Current().cat,
			Admit: func(r *http.Request) (func(), bool) {
				return limiter.AcquireConn(limiter.ClientIP(r))
			},
			Logger:     log.With("role", "push"),
			Registerer: reg,
		})
		work.Go(func() error { return hub.Run(workCtx) })
		ns.hub = hub
		router.GET("/v1/ws", limiter.Middleware(), gin.WrapH(hub))
	}
	web.Register(router)
	work.Go(func() error { return ns.Follow(workCtx) })

	router.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	router.GET("/readyz", func(c *gin.Context) {
		if msg := readiness(c.Request.Context(), rdb, ns.aggLag()); msg != "" {
			c.String(http.StatusServiceUnavailable, msg+"\n")
			return
		}
		c.String(http.StatusOK, "ready\n")
	})
	router.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	registerOpenAPI(router)
	logRoutes(log, router)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           router,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	printDashboardURL(cfg, ln.Addr(), readTok)
	log.Info("pulse serving", "addr", ln.Addr().String(), "roles", strings.Join(rolesOf(cfg), ","),
		"stream", cfg.Stream, "redis", redactURL(cfg.Redis), "data", cfg.Data)

	if cfg.AdminAddr != "" {
		// pprof on its own listener, off by default: profiles expose
		// internals and cost CPU, so they never share the public port.
		admin := &http.Server{Addr: cfg.AdminAddr, Handler: adminMux(), ReadHeaderTimeout: 5 * time.Second}
		work.Go(func() error {
			go func() { <-workCtx.Done(); admin.Close() }()
			if err := admin.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("admin listener %s: %w", cfg.AdminAddr, err)
			}
			return nil
		})
		log.Info("admin listener (pprof)", "addr", cfg.AdminAddr)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
	case <-workCtx.Done():
		runErr = work.Wait()
	}
	log.Info("pulse shutting down")
	shCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	stopWork()
	if err := work.Wait(); err != nil && !errors.Is(err, context.Canceled) && runErr == nil {
		runErr = err
	}
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return runErr
}

// adminMux serves the runtime profiles of net/http/pprof.
func adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// loadCatalog returns the metric definitions of path, or the built-ins.
func loadCatalog(path string) (*metric.Catalog, error) {
	defs, steps := metric.Builtins(), metric.DefaultSteps()
	if path != "" {
		var err error
		if defs, steps, err = metric.LoadConfig(path); err != nil {
			return nil, fmt.Errorf("--metrics-config: %w", err)
		}
	}
	cat, err := metric.NewCatalog(defs, steps)
	if err != nil {
		return nil, fmt.Errorf("metric catalog: %w", err)
	}
	return cat, nil
}

// rateLimit maps a flag value to a limit: 0 is the default, negative off.
func rateLimit(v float64) rate.Limit {
	switch {
	case v < 0:
		return ratelimit.Disabled
	case v == 0:
		return 0
	}
	return rate.Limit(v)
}

// streamBackend is what serve needs of a stream backend; Put goes through
// the Publisher each backend adapts, since their result types differ.
type streamBackend interface {
	Shards(ctx context.Context) ([]stream.Shard, error)
	Read(ctx context.Context, shard, after string, limit int) (stream.Batch, error)
	ReadFrom(ctx context.Context, shard, from string, limit int) (stream.Batch, error)
	Run(ctx context.Context) error
	Close() error
}

// publisherFunc adapts a backend's Put to ingest.Publisher.
type publisherFunc func(ctx context.Context, entries []stream.Entry) error

func (f publisherFunc) Publish(ctx context.Context, entries []stream.Entry) error {
	return f(ctx, entries)
}

func openStream(ctx context.Context, cfg serveConfig, cat *metric.Catalog, log *slog.Logger, reg prometheus.Registerer) (streamBackend, ingest.Publisher, error) {
	switch {
	case cfg.Stream == "local":
		age := cfg.RetentionAge
		if age == 0 {
			for _, s := range cat.Steps {
				if r := s.Width + s.Retention; r > age {
					age = r
				}
			}
		}
		l, err := local.Open(filepath.Join(cfg.Data, "stream"), local.Config{
			Shards: cfg.Shards, RetentionAge: age, RetentionBytes: cfg.RetentionBytes, Logger: log,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("open local stream: %w", err)
		}
		return l, publisherFunc(func(ctx context.Context, e []stream.Entry) error { _, err := l.Put(ctx, e); return err }), nil
	case strings.HasPrefix(cfg.Stream, "kinesis://"):
		name := strings.TrimPrefix(cfg.Stream, "kinesis://")
		if name == "" {
			return nil, nil, fmt.Errorf("--stream %s: no stream name", cfg.Stream)
		}
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithHTTPClient(outbound.AWSHTTPClient(outbound.KinesisTotalTimeout)))
		if err != nil {
			return nil, nil, fmt.Errorf("--stream %s: load AWS config: %w", cfg.Stream, err)
		}
		k, err := kinesis.New(ctx, kinesis.Config{Stream: name, Client: awskinesis.NewFromConfig(awsCfg), EFOConsumer: cfg.KinesisEFO, Logger: log, Registerer: reg})
		if err != nil {
			return nil, nil, fmt.Errorf("open kinesis stream %s: %w", name, err)
		}
		return k, publisherFunc(func(ctx context.Context, e []stream.Entry) error { _, err := k.Put(ctx, e); return err }), nil
	}
	return nil, nil, fmt.Errorf("--stream: %q is not local or kinesis://NAME", cfg.Stream)
}

// openRedis connects to the aggregate store, starting the embedded one when
// asked. Background work it needs runs in g.
func openRedis(ctx context.Context, raw string, g *errgroup.Group, log *slog.Logger) (redis.UniversalClient, func(), error) {
	switch {
	case raw == "embedded":
		e, err := startEmbeddedRedis()
		if err != nil {
			return nil, nil, err
		}
		g.Go(func() error { return e.Run(ctx) })
		log.Info("embedded redis listening (aggregates are rebuilt from the stream at start)", "addr", e.Addr())
		c := redis.NewClient(outbound.RedisOptions(&redis.Options{Addr: e.Addr()}))
		return c, func() { c.Close(); e.Close() }, nil
	case strings.HasPrefix(raw, "redis://"), strings.HasPrefix(raw, "rediss://"):
		opt, err := redis.ParseURL(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("--redis %s: %w", redactURL(raw), err)
		}
		c := redis.NewClient(outbound.RedisOptions(opt))
		return c, func() { c.Close() }, nil
	case strings.HasPrefix(raw, "redis-cluster://"):
		addrs := strings.Split(strings.TrimPrefix(raw, "redis-cluster://"), ",")
		c := redis.NewClusterClient(outbound.RedisClusterOptions(&redis.ClusterOptions{Addrs: addrs}))
		return c, func() { c.Close() }, nil
	}
	return nil, nil, fmt.Errorf("--redis: %q is not embedded, redis://HOST:PORT/DB or redis-cluster://H1,H2", raw)
}

// readiness says why the server should not take traffic yet ("" when ready):
// the aggregate store must answer, and the aggregator must have caught up
// with the stream (after a start on the embedded store it rebuilds first).
func readiness(ctx context.Context, rdb redis.UniversalClient, lag map[string]aggregator.Lag) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return "redis: " + err.Error()
	}
	if lag != nil {
		for shard, l := range lag {
			if l.Records > 10000 {
				return fmt.Sprintf("aggregator: shard %s is %d records behind", shard, l.Records)
			}
		}
	}
	return ""
}

func printDashboardURL(cfg serveConfig, addr net.Addr, token string) {
	base := cfg.PublicURL
	if base == "" {
		port := "8080"
		if ta, ok := addr.(*net.TCPAddr); ok {
			port = fmt.Sprint(ta.Port)
		}
		base = "http://localhost:" + port
	}
	fmt.Fprintf(os.Stderr, "\n  Pulse dashboard: %s/?token=%s\n  Demo page:       %s/demo/\n\n", strings.TrimRight(base, "/"), token, strings.TrimRight(base, "/"))
}

func rolesOf(cfg serveConfig) []string {
	var out []string
	for _, r := range allRoles {
		if cfg.Roles[r] {
			out = append(out, r)
		}
	}
	return out
}

// redactURL hides a password in a Redis URL before it is logged.
func redactURL(raw string) string {
	if i := strings.Index(raw, "@"); i > 0 {
		if j := strings.Index(raw, "://"); j > 0 && j < i {
			return raw[:j+3] + "***" + raw[i:]
		}
	}
	return raw
}
