package node

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/pulsehq/pulse/aggregator"
	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/archiver"
	"github.com/pulsehq/pulse/control"
	"github.com/pulsehq/pulse/enrich"
	"github.com/pulsehq/pulse/geoip"
	"github.com/pulsehq/pulse/ingest"
	"github.com/pulsehq/pulse/internal/embedredis"
	"github.com/pulsehq/pulse/internal/outbound"
	"github.com/pulsehq/pulse/livequery"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/push"
	"github.com/pulsehq/pulse/query"
	"github.com/pulsehq/pulse/ratelimit"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/sites"
	"github.com/pulsehq/pulse/stream"
	"github.com/pulsehq/pulse/stream/kinesis"
	"github.com/pulsehq/pulse/stream/local"
	"github.com/pulsehq/pulse/visitorid"
	"github.com/pulsehq/pulse/web"
)

// part is what building one role, or one common piece, yields: the runner
// Run's errgroup runs (nil: none) and the routes it adds (nil: none).
type part struct {
	run    func(ctx context.Context) error
	routes func(r *gin.Engine)
}

// start brings up Redis, the stream and the namespace registry, retrying
// each while it is not ready, then builds the roles and starts every
// runner in work. It returns the router of all routes and the readiness
// check of /readyz.
func (n *node) start(ctx, workCtx context.Context, work *errgroup.Group) (*gin.Engine, func(context.Context) string, error) {
	rdb, redisPart, err := n.redis(ctx)
	if err != nil {
		return nil, nil, err
	}
	// A push-only node reads Redis alone and needs no stream.
	var st streamBackend
	var pub ingest.Publisher
	streamPart := part{}
	if n.cfg.Roles["ingest"] || n.cfg.Roles["aggregate"] || n.cfg.Roles["archive"] {
		if st, pub, streamPart, err = n.stream(ctx); err != nil {
			return nil, nil, err
		}
	}
	ns, ap, nsPart, err := n.namespaces(ctx, rdb, st)
	if err != nil {
		return nil, nil, err
	}
	known, sitesPart, err := n.sites(ctx, rdb)
	if err != nil {
		return nil, nil, err
	}
	parts := []part{redisPart, streamPart, n.common(), sitesPart}
	if n.cfg.Roles["archive"] {
		p, err := n.archive(ctx, st, ap, rdb)
		if err != nil {
			return nil, nil, err
		}
		parts = append(parts, p)
	}
	if n.cfg.Roles["ingest"] {
		p, err := n.ingest(pub, known, rdb)
		if err != nil {
			return nil, nil, err
		}
		parts = append(parts, p)
	}
	if n.cfg.Roles["push"] {
		parts = append(parts, n.push(ns, rdb))
	}
	// Last: the control plane must not run before the push role set its switcher.
	parts = append(parts, nsPart)
	for _, p := range parts {
		if p.run != nil {
			work.Go(func() error { return p.run(workCtx) })
		}
	}
	check := func(ctx context.Context) string { return notReady(ctx, rdb, ns.Lag()) }
	return n.routed(parts), check, nil
}

// redis connects to the aggregate store, starting the embedded one when
// asked, and waits until it answers.
func (n *node) redis(ctx context.Context) (redis.UniversalClient, part, error) {
	raw := n.cfg.Redis
	var c redis.UniversalClient
	reload := func(context.Context) {}
	switch {
	case raw == "embedded":
		e, err := embedredis.Start()
		if err != nil {
			return nil, part{}, err
		}
		n.log.Info("embedded redis listening (aggregates are rebuilt from the stream at start)", "addr", e.Addr())
		c = redis.NewClient(outbound.RedisOptions(&redis.Options{Addr: e.Addr(), Password: e.Password()}))
		n.closers = append(n.closers, e.Close, func() { c.Close() })
		return c, part{run: e.Run}, nil
	case strings.HasPrefix(raw, "redis://"), strings.HasPrefix(raw, "rediss://"):
		opt, err := redis.ParseURL(raw)
		if err != nil {
			return nil, part{}, fmt.Errorf("--redis %s: %w", redactURL(raw), err)
		}
		c = redis.NewClient(outbound.RedisOptions(opt))
	case strings.HasPrefix(raw, "redis-cluster://"):
		addrs := strings.Split(strings.TrimPrefix(raw, "redis-cluster://"), ",")
		cc := redis.NewClusterClient(outbound.RedisClusterOptions(&redis.ClusterOptions{Addrs: addrs}))
		// The slot map of nodes not joined into a cluster yet is empty,
		// and go-redis keeps a slot map for 10 s: ask for a fresh one
		// after each failed attempt, so the node is ready soon after the
		// cluster is.
		c, reload = cc, cc.ReloadState
	default:
		return nil, part{}, fmt.Errorf("--redis: %q is not embedded, redis://HOST:PORT/DB or redis-cluster://H1,H2", raw)
	}
	n.closers = append(n.closers, func() { c.Close() })
	err := n.gate.Retry(ctx, "redis "+redactURL(raw), func(ctx context.Context) error {
		err := c.Ping(ctx).Err()
		if err != nil {
			reload(ctx)
		}
		return err
	})
	return c, part{}, err
}

// stream opens the stream (retried while its endpoint is not ready) and
// wraps its puts in the timing of pulse_stream_put_seconds.
func (n *node) stream(ctx context.Context) (streamBackend, ingest.Publisher, part, error) {
	// Kinesis registers pulse_kinesis_* per reader; the archive role opens
	// a second one labelled reader="archive", and one metric name must
	// have one label set, so this one is reader="main".
	var reg prometheus.Registerer = n.reg
	backend := "local"
	if strings.HasPrefix(n.cfg.Stream, "kinesis://") {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"reader": "main"}, n.reg)
		backend = "kinesis"
	}
	st, pub, err := n.openStream(ctx, n.cfg, "stream", reg)
	if err != nil {
		return nil, nil, part{}, err
	}
	return st, stream.NewTimedPublisher(pub, backend, n.reg), part{run: st.Run}, nil
}

// namespaces loads the namespace registry (retried while Redis cannot
// serve it, as a cluster that has not settled) and opens the current
// namespace. Its part runs the control plane (with the aggregate role, the
// live aggregator), adds the read and admin routes; the archive role gets
// the archive and its checkpoints.
func (n *node) namespaces(ctx context.Context, rdb redis.UniversalClient, st streamBackend) (*control.Runtime, archiveParts, part, error) {
	var ns *control.Runtime
	var ap archiveParts
	err := n.gate.Retry(ctx, "namespace registry", func(ctx context.Context) error {
		var err error
		ns, ap.store, ap.ck, err = startNamespaces(ctx, n.cfg, rdb, st, n.log, n.reg)
		return err
	})
	if err != nil {
		return nil, archiveParts{}, part{}, err
	}
	registerOverflow(n.reg, func() redisagg.Stats { return ns.Current().Store.Stats() })
	return ns, ap, part{run: ns.Run, routes: func(r *gin.Engine) {
		reads := r.Group("/", n.limiter.Middleware(), n.tokens.RequireRead())
		for _, p := range []string{"/v1/metrics", "/v1/query", "/v1/top"} {
			reads.GET(p, ns.QueryHandler())
		}
		for _, p := range query.StatsRoutes() {
			reads.POST(p, ns.QueryHandler())
		}
		ns.RegisterAdmin(r.Group("/", n.limiter.Middleware(), n.tokens.RequireAdmin()))
	}}, nil
}

// archiveParts is where the archive role writes and keeps its positions.
type archiveParts struct {
	store archive.ObjectStore
	ck    archiver.Checkpoints
}

// archive is the archive role. On Kinesis it reads with a
// reader of its own, since shard iterators are per reader position; it
// polls: a bulk reader minutes behind gains nothing from push, and it has
// the shards' shared 2 MB/s to itself while the main reader uses enhanced
// fan-out (docs/scaling.md).
func (n *node) archive(ctx context.Context, st streamBackend, ap archiveParts, rdb redis.UniversalClient) (part, error) {
	src := st
	if strings.HasPrefix(n.cfg.Stream, "kinesis://") {
		acfg := n.cfg
		acfg.KinesisEFO = ""
		ast, _, err := n.openStream(ctx, acfg, "archive-stream", prometheus.WrapRegistererWith(prometheus.Labels{"reader": "archive"}, n.reg))
		if err != nil {
			return part{}, err
		}
		src = ast
	}
	run, err := archiveRunner(n.cfg, src, ap.store, ap.ck, rdb, n.log.With("role", "archive"), n.reg)
	return part{run: run}, err
}

// sites is the set of accepted sites, loaded from Redis (retried while
// Redis cannot serve it). Every node serves its admin routes, since any
// node may take an admin's call; an ingest node also reloads it, so sites
// added through another node reach it. Every role has Redis, so an
// ingest-only node of a fleet reads and writes the shared set too.
func (n *node) sites(ctx context.Context, rdb redis.UniversalClient) (*sites.Set, part, error) {
	static := n.cfg.Harden.Sites
	if len(static) == 0 {
		static = []string{sites.Any}
	}
	cfg := sites.Config{
		Static: static, Max: n.cfg.Harden.SitesMax, NewPerMinute: n.cfg.Harden.SitesNewPerMinute,
		Redis: rdb, Key: redisagg.Keys{}.Sites(), Logger: n.log.With("part", "sites"), Registerer: n.reg,
	}
	if n.cfg.Redis == "embedded" {
		// The embedded Redis forgets everything at exit; the data dir
		// keeps the sites added at run time.
		cfg.File = filepath.Join(n.cfg.Data, "sites")
	}
	set, err := sites.New(cfg)
	if err != nil {
		return nil, part{}, fmt.Errorf("--sites: %w", err)
	}
	if err := n.gate.Retry(ctx, "sites", set.Load); err != nil {
		return nil, part{}, err
	}
	p := part{routes: func(r *gin.Engine) {
		set.RegisterAdmin(r.Group("/", n.limiter.Middleware(), n.tokens.RequireAdmin()))
	}}
	if n.cfg.Roles["ingest"] {
		p.run = set.Run
	}
	return set, p, nil
}

// ingest is the beacon endpoint, publishing into the stream the events of
// the sites known admits.
func (n *node) ingest(pub ingest.Publisher, known *sites.Set, rdb redis.UniversalClient) (part, error) {
	icfg := ingest.Config{Sites: n.limiter, Known: known, MaxInFlight: n.cfg.MaxInFlight, AdmitWait: n.cfg.AdmitWait, DedupWindow: n.cfg.DedupWindow, Logger: n.log.With("role", "ingest"), Registerer: n.reg}
	if err := ingestAccess(n.cfg.Harden, &icfg, n.log); err != nil {
		return part{}, err
	}
	countries, err := n.countries()
	if err != nil {
		return part{}, err
	}
	ids := visitorid.New(rdb)
	if n.cfg.Redis == "embedded" {
		// Its Redis starts empty: the day's salt must outlive a restart.
		ids = visitorid.NewWith(visitorid.DirSalts{Dir: filepath.Join(n.cfg.Data, "salts")})
	}
	visits, err := enrich.New(countries, ids)
	if err != nil {
		countries.Close()
		return part{}, fmt.Errorf("ingest: %w", err)
	}
	icfg.Visits = visits
	// Closed with the stores, once the listener has shut down: a user's
	// file is mapped into memory, which no request may read after.
	n.closers = append(n.closers, func() { countries.Close() })
	h := ingest.New(pub, icfg)
	return part{routes: func(r *gin.Engine) { h.Register(r.Group("/", n.limiter.Middleware())) }}, nil
}

// countries opens the country database of Config.GeoIP, or the bundled one.
func (n *node) countries() (*geoip.DB, error) {
	if n.cfg.GeoIP == "" {
		db, err := geoip.Bundled()
		if err != nil {
			return nil, fmt.Errorf("ingest: bundled country database: %w", err)
		}
		return db, nil
	}
	db, err := geoip.Open(n.cfg.GeoIP)
	if err != nil {
		return nil, fmt.Errorf("ingest: --geoip: %w", err)
	}
	return db, nil
}

// push is the WebSocket hub, fed by Redis from the current namespace; its
// live queries read the current namespace's fact rows.
func (n *node) push(ns *control.Runtime, rdb redis.UniversalClient) part {
	live := livequery.New(livequery.Config{
		Redis: rdb,
		Current: func() livequery.Namespace {
			v := ns.Current()
			return livequery.Namespace{Engine: v.Stats, Channel: v.Store.RowChannelOf}
		},
		Logger: n.log.With("role", "push", "part", "livequery"),
	})
	hub := push.New(redisagg.NewSource(rdb, ns), push.Config{
		Live:           live,
		AllowedOrigins: n.cfg.AllowedOrigins,
		SiteZones:      n.cfg.SiteZones,
		Tokens:         n.tokens,
		Catalog:        ns.Current().Catalog,
		Admit: func(r *http.Request) (func(), bool) {
			return n.limiter.AcquireConn(n.limiter.ClientIP(r))
		},
		ClientAddr: func(r *http.Request) string { return n.limiter.ClientIP(r).String() },
		Logger:     n.log.With("role", "push"),
		Registerer: n.reg,
	})
	ns.SetSwitcher(hub)
	return part{run: hub.Run, routes: func(r *gin.Engine) { r.GET("/v1/ws", n.limiter.Middleware(), gin.WrapH(hub)) }}
}

// common is what every node serves: probes, metrics, the API description,
// the dashboard.
func (n *node) common() part {
	return part{routes: func(r *gin.Engine) {
		r.GET("/healthz", gin.WrapF(n.gate.Healthz))
		r.GET("/readyz", gin.WrapF(n.gate.Readyz))
		r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{Registry: n.reg})))
		registerOpenAPI(r)
		web.Register(r, web.Config{DedupWindow: n.cfg.DedupWindow})
	}}
}

// notReady says why the server should not take traffic yet ("" when ready):
// the aggregate store must answer, and the aggregator must have caught up
// with the stream (after a start on the embedded store it rebuilds first).
func notReady(ctx context.Context, rdb redis.UniversalClient, lag map[string]aggregator.Lag) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return "redis: " + err.Error()
	}
	for shard, l := range lag {
		if l.Records > 10000 {
			return fmt.Sprintf("aggregator: shard %s is %d records behind", shard, l.Records)
		}
	}
	return ""
}

// streamBackend is what a node needs of a stream backend; Put goes through
// the Publisher each backend adapts, since their result types differ.
type streamBackend interface {
	Shards(ctx context.Context) ([]stream.Shard, error)
	Read(ctx context.Context, shard, after string, limit int) (stream.Batch, error)
	ReadFrom(ctx context.Context, shard, from string, limit int) (stream.Batch, error)
	Run(ctx context.Context) error
	Close() error
}

// openStream opens the stream cfg names, retried while its endpoint is
// not ready; it is closed after the workers stopped.
func (n *node) openStream(ctx context.Context, cfg Config, what string, reg prometheus.Registerer) (streamBackend, ingest.Publisher, error) {
	log := n.log.With("part", what)
	if cfg.Stream == "kinesis://" {
		return nil, nil, fmt.Errorf("--stream %s: no stream name", cfg.Stream)
	}
	var st streamBackend
	var pub stream.PublisherFunc
	err := n.gate.Retry(ctx, what, func(ctx context.Context) error {
		switch {
		case cfg.Stream == "local":
			l, err := local.Open(filepath.Join(cfg.Data, "stream"), local.Config{
				Shards: cfg.Shards, RetentionAge: localRetention(cfg, n.cat), RetentionBytes: cfg.RetentionBytes, Logger: log,
			})
			if err != nil {
				return fmt.Errorf("open local stream: %w", err)
			}
			st, pub = l, l.Append
			return nil
		case strings.HasPrefix(cfg.Stream, "kinesis://"):
			name := strings.TrimPrefix(cfg.Stream, "kinesis://")
			awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithHTTPClient(outbound.AWSHTTPClient(outbound.KinesisTotalTimeout)))
			if err != nil {
				return fmt.Errorf("--stream %s: load AWS config: %w", cfg.Stream, err)
			}
			k, err := kinesis.New(ctx, kinesis.Config{Stream: name, Client: awskinesis.NewFromConfig(awsCfg), EFOConsumer: cfg.KinesisEFO, Logger: log, Registerer: reg})
			if err != nil {
				return fmt.Errorf("open kinesis stream %s: %w", name, err)
			}
			st, pub = k, func(ctx context.Context, e []stream.Entry) error { _, err := k.Put(ctx, e); return err }
			return nil
		}
		return fmt.Errorf("--stream: %q is not local or kinesis://NAME", cfg.Stream)
	})
	if err != nil {
		return nil, nil, err
	}
	n.closers = append(n.closers, func() { st.Close() })
	return st, pub, nil
}

// localRetention is --retention-age, by default the longest aggregate
// retention, so that a restart rebuilds every aggregate exactly.
func localRetention(cfg Config, cat *metric.Catalog) time.Duration {
	age := cfg.RetentionAge
	if age == 0 {
		for _, s := range cat.Steps {
			age = max(age, s.Width+s.Retention)
		}
	}
	return age
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
