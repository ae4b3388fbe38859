package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/pulsehq/pulse/aggregator"
	"github.com/pulsehq/pulse/archive"
	"github.com/pulsehq/pulse/archiver"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/namespace"
	"github.com/pulsehq/pulse/push"
	"github.com/pulsehq/pulse/query"
	"github.com/pulsehq/pulse/redisagg"
)

// nsView is everything that reads or writes one namespace: its catalog,
// its store and the REST query routes over them.
type nsView struct {
	info  namespace.Info
	cat   *metric.Catalog
	store *redisagg.Store
	query http.Handler
}

// nsRuntime owns the current-namespace pointer of this process and what
// follows it: REST queries, the push hub and the live aggregator. It also
// runs the admin jobs (replay, verify). Every process follows the registry
// (polled every second, at once after a local promote), so a fleet of push
// and aggregate nodes switches without restarts. Safe for concurrent use.
type nsRuntime struct {
	rdb    redis.UniversalClient
	reg    *namespace.Registry
	cfg    serveConfig
	log    *slog.Logger
	prom   prometheus.Registerer
	g      *errgroup.Group
	ctx    context.Context // the workers' context
	src    streamBackend   // nil on a push-only node
	arch   archive.ObjectStore
	archCk archiver.Checkpoints

	cur atomic.Pointer[nsView]
	hub *push.Hub // nil without the push role; set before Run

	kick     chan struct{} // follow the registry now
	switchMu sync.Mutex    // one switch at a time
	aggMu    sync.Mutex    // guards agg, aggStop, aggDone
	agg      *aggregator.Aggregator
	aggStop  context.CancelFunc
	aggDone  chan struct{}

	jobs jobTable
}

// registryBackend keeps the registry where it outlives the aggregates: in
// the data dir with the embedded Redis (which forgets everything at exit),
// in Redis otherwise.
func registryBackend(cfg serveConfig, rdb redis.UniversalClient) namespace.Backend {
	if cfg.Redis == "embedded" {
		return namespace.NewFileBackend(filepath.Join(cfg.Data, "namespaces.json"))
	}
	return namespace.NewRedisBackend(rdb)
}

// newNSRuntime loads (or creates) the registry and opens the current
// namespace. With the embedded store, namespaces other than the current
// one lost their aggregates with the last process: they go back to
// building, and `pulse replay` rebuilds them.
func newNSRuntime(ctx context.Context, g *errgroup.Group, cfg serveConfig, rdb redis.UniversalClient, src streamBackend, log *slog.Logger, prom prometheus.Registerer) (*nsRuntime, error) {
	r := &nsRuntime{
		rdb: rdb, reg: namespace.New(registryBackend(cfg, rdb), namespace.Config{}), cfg: cfg, log: log, prom: prom,
		g: g, ctx: ctx, src: src, kick: make(chan struct{}, 1), jobs: jobTable{jobs: map[string]*job{}},
	}
	metricsConfig := ""
	if cfg.MetricsConfig != "" {
		b, err := os.ReadFile(cfg.MetricsConfig)
		if err != nil {
			return nil, fmt.Errorf("--metrics-config: %w", err)
		}
		metricsConfig = string(b)
	}
	info, err := r.reg.Bootstrap(ctx, cfg.Namespace, metricsConfig)
	if err != nil {
		return nil, err
	}
	if info.Name != cfg.Namespace {
		log.Info("namespace registry: current namespace differs from --namespace; the registry wins", "current", info.Name, "flag", cfg.Namespace)
	}
	if info.MetricsConfig != metricsConfig {
		log.Warn("namespace registry: the current namespace keeps the metrics config it was built with; use pulse replay --metrics-config and pulse promote to change it", "namespace", info.Name)
	}
	if cfg.Redis == "embedded" {
		if _, err := r.reg.Update(ctx, func(d *namespace.Doc) error {
			for i := range d.Namespaces {
				if d.Namespaces[i].State == namespace.Ready {
					d.Namespaces[i].State = namespace.Building
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	v, err := r.view(info, false)
	if err != nil {
		return nil, err
	}
	r.cur.Store(v)
	return r, nil
}

// view opens a namespace. noDeltas is for builds: nobody listens to a
// namespace before it is promoted.
func (r *nsRuntime) view(info namespace.Info, noDeltas bool) (*nsView, error) {
	cat, err := info.Catalog()
	if err != nil {
		return nil, fmt.Errorf("namespace %s: metrics config: %w", info.Name, err)
	}
	st := redisagg.New(r.rdb, cat, redisagg.Config{Namespace: info.Name, NoDeltas: noDeltas})
	gin.SetMode(gin.ReleaseMode)
	eng := gin.New()
	eng.ContextWithFallback = true
	query.New(st, cat, query.Config{Logger: r.log.With("role", "query")}).Register(eng)
	return &nsView{info: info, cat: cat, store: st, query: eng}, nil
}

// Current is the current namespace's view.
func (r *nsRuntime) Current() *nsView { return r.cur.Load() }

// QueryHandler serves GET /v1/metrics, /v1/query and /v1/top from the
// current namespace.
func (r *nsRuntime) QueryHandler() gin.HandlerFunc {
	return func(c *gin.Context) { r.cur.Load().query.ServeHTTP(c.Writer, c.Request) }
}

// Snapshot implements push.Snapshotter on the current namespace.
func (r *nsRuntime) Snapshot(ctx context.Context, q redisagg.SeriesQuery) (int64, redisagg.Result, error) {
	return r.cur.Load().store.Snapshot(ctx, q)
}

// DeltaLogKey implements push.DeltaKeys on the current namespace.
func (r *nsRuntime) DeltaLogKey(site, m string) string {
	return r.cur.Load().store.DeltaLogKey(site, m)
}

// DeltaChannel implements push.DeltaKeys on the current namespace.
func (r *nsRuntime) DeltaChannel(site, m string) string {
	return r.cur.Load().store.DeltaChannel(site, m)
}

// Lag is the live aggregator's lag, for /readyz.
func (r *nsRuntime) Lag() map[string]aggregator.Lag {
	r.aggMu.Lock()
	defer r.aggMu.Unlock()
	if r.agg == nil {
		return nil
	}
	return r.agg.Lag()
}

func (r *nsRuntime) aggConfig(cat *metric.Catalog, reg prometheus.Registerer, log *slog.Logger) aggregator.Config {
	return aggregator.Config{
		Catalog:         cat,
		DedupWindow:     r.cfg.DedupWindow,
		AllowedLateness: r.cfg.AllowedLateness,
		Logger:          log,
		Registerer:      reg,
	}
}

// startAggregator runs the live aggregator on the current namespace.
func (r *nsRuntime) startAggregator() error {
	v := r.cur.Load()
	var reg prometheus.Registerer
	if r.prom != nil {
		reg = replacingRegisterer{r.prom}
	}
	log := r.log.With("role", "aggregate", "namespace", v.info.Name)
	agg, err := aggregator.New(r.src, v.store, r.aggConfig(v.cat, reg, log))
	if err != nil {
		return fmt.Errorf("aggregator: %w", err)
	}
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	r.aggMu.Lock()
	r.agg, r.aggStop, r.aggDone = agg, cancel, done
	r.aggMu.Unlock()
	r.g.Go(func() error {
		defer close(done)
		// Alone, or in a group of instances leasing the shards of this
		// namespace (its own lease keys and fences, p:NS:{lease}:...).
		return runAggregator(ctx, r.cfg.Group, v.info.Name, agg, r.rdb, log, reg)
	})
	return nil
}

// stopAggregator stops the live aggregator and waits until it stopped:
// it commits whole batches only, so stopping anywhere is safe, and once it
// returned nothing writes the old namespace any more.
func (r *nsRuntime) stopAggregator() {
	r.aggMu.Lock()
	stop, done := r.aggStop, r.aggDone
	r.aggStop, r.aggDone = nil, nil
	r.aggMu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// Follow keeps this process on the registry's current namespace until ctx
// ends, checking every second and whenever kicked.
func (r *nsRuntime) Follow(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.kick:
		}
		if err := r.follow(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("namespace: follow the registry", "err", err)
		}
	}
}

// follow switches to the registry's current namespace if it changed: stop
// the live aggregator (the old namespace is final), swap the pointer under
// the push hub (every subscription gets a reset snapshot from the new
// namespace), then start the aggregator on the new namespace, where it
// continues from the positions stored there: those the replay ended at.
func (r *nsRuntime) follow(ctx context.Context) error {
	r.switchMu.Lock()
	defer r.switchMu.Unlock()
	d, err := r.reg.Load(ctx)
	if err != nil {
		return err
	}
	old := r.cur.Load()
	if d.Current == "" || d.Current == old.info.Name {
		return nil
	}
	info, ok := d.Find(d.Current)
	if !ok {
		return fmt.Errorf("registry names %s current but does not list it", d.Current)
	}
	v, err := r.view(*info, false)
	if err != nil {
		return err
	}
	r.aggMu.Lock()
	running := r.aggStop != nil
	r.aggMu.Unlock()
	r.stopAggregator()
	swap := func() { r.cur.Store(v) }
	if r.hub != nil {
		if err := r.hub.Switch(ctx, v.cat, swap); err != nil {
			return fmt.Errorf("push switch: %w", err)
		}
	} else {
		swap()
	}
	r.log.Info("namespace switched", "from", old.info.Name, "to", v.info.Name)
	if running {
		return r.startAggregator()
	}
	return nil
}

// promote makes name current and waits until this process follows.
func (r *nsRuntime) promote(ctx context.Context, name string) (string, error) {
	if j := r.jobs.building(name); j != nil {
		return "", fmt.Errorf("%w: namespace %s is being built by job %s", namespace.ErrConflict, name, j.status().ID)
	}
	if err := r.checkTail(ctx, name); err != nil {
		return "", err
	}
	prev, err := r.reg.Promote(ctx, name)
	if err != nil {
		return "", err
	}
	return prev, r.follow(ctx)
}

// drop removes a namespace that is not current and deletes its keys.
func (r *nsRuntime) drop(ctx context.Context, name string) (int64, error) {
	if j := r.jobs.building(name); j != nil {
		return 0, fmt.Errorf("%w: namespace %s is being built by job %s", namespace.ErrConflict, name, j.status().ID)
	}
	if name == r.cur.Load().info.Name {
		return 0, fmt.Errorf("%w: namespace %s is current; promote another one first", namespace.ErrConflict, name)
	}
	if err := r.reg.Remove(ctx, name); err != nil {
		return 0, err
	}
	return namespace.DropKeys(ctx, r.rdb, name)
}

// openArchive opens the archive store and the archiver's checkpoints that
// --archive and --redis name; the archiver writes them, replay reads them.
func openArchive(ctx context.Context, cfg serveConfig, rdb redis.UniversalClient) (archive.ObjectStore, archiver.Checkpoints, error) {
	raw := archiveURL(cfg)
	store, err := archive.ParseURL(ctx, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("--archive: %w", err)
	}
	var ck archiver.Checkpoints = archiver.NewRedisCheckpoints(rdb, "")
	if cfg.Redis == "embedded" {
		ck = archiver.NewFileCheckpoints(filepath.Join(cfg.Data, "archive-checkpoints"))
	}
	return store, ck, nil
}

var errNoStream = errors.New("this node runs no stream (roles ingest, aggregate or archive): replay and verify need one")

// archiveURL is the archive --archive names, default file://DATA/archive.
func archiveURL(cfg serveConfig) string {
	if cfg.Archive != "" {
		return cfg.Archive
	}
	dir, err := filepath.Abs(filepath.Join(cfg.Data, "archive"))
	if err != nil {
		dir = filepath.Join(cfg.Data, "archive")
	}
	return "file://" + dir
}

// startNamespaces opens the namespace registry and the current namespace,
// the archive (for replay and the archive role) and, with the aggregate
// role, the live aggregator on the current namespace.
func startNamespaces(ctx, workCtx context.Context, g *errgroup.Group, cfg serveConfig, rdb redis.UniversalClient, st streamBackend, log *slog.Logger, reg prometheus.Registerer) (*nsRuntime, error) {
	ns, err := newNSRuntime(workCtx, g, cfg, rdb, st, log.With("part", "namespace"), reg)
	if err != nil {
		return nil, err
	}
	if st != nil {
		store, ck, err := openArchive(ctx, cfg, rdb)
		switch {
		case err != nil && cfg.Roles["archive"]:
			return nil, err
		case err != nil:
			log.Warn("archive unavailable: replay and verify read the stream only", "err", err)
		default:
			ns.arch, ns.archCk = store, ck
		}
	}
	if cfg.Roles["aggregate"] {
		if err := ns.startAggregator(); err != nil {
			return nil, err
		}
	}
	log.Info("namespace", "current", ns.Current().info.Name)
	return ns, nil
}

// aggLag is the live aggregator's lag for /readyz; nil without the
// aggregate role.
func (r *nsRuntime) aggLag() map[string]aggregator.Lag {
	if !r.cfg.Roles["aggregate"] {
		return nil
	}
	if l := r.Lag(); l != nil {
		return l
	}
	return map[string]aggregator.Lag{}
}

// replacingRegisterer registers collectors, replacing one already
// registered under the same name: the live aggregator is made anew on
// every namespace switch, and its metrics continue under the same names
// (counters restart from zero, which Prometheus reads as a reset).
type replacingRegisterer struct{ prometheus.Registerer }

func (r replacingRegisterer) Register(c prometheus.Collector) error {
	err := r.Registerer.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		r.Registerer.Unregister(are.ExistingCollector)
		return r.Registerer.Register(c)
	}
	return err
}

func (r replacingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// checkTail refuses a promote that would lose events: the live aggregator
// continues from the positions the replay ended at, so the stream must
// still hold the records after them. When retention trimmed some, the
// namespace must catch up first (pulse replay again resumes it, reading
// them from the archive).
func (r *nsRuntime) checkTail(ctx context.Context, name string) error {
	if r.src == nil {
		return nil // a push-only node: the aggregate nodes check nothing either
	}
	d, err := r.reg.Load(ctx)
	if err != nil {
		return err
	}
	info, ok := d.Find(name)
	if !ok {
		return fmt.Errorf("%w: %s", namespace.ErrNotFound, name)
	}
	v, err := r.view(*info, true)
	if err != nil {
		return err
	}
	shards, err := r.src.Shards(ctx)
	if err != nil {
		return fmt.Errorf("promote %s: list shards: %w", name, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, sh := range shards {
		g.Go(func() error {
			pos, err := v.store.Position(gctx, sh.ID)
			if err != nil {
				return fmt.Errorf("promote %s: position of shard %s: %w", name, sh.ID, err)
			}
			b, err := r.src.Read(gctx, sh.ID, pos.Seq, 1)
			if err != nil {
				return fmt.Errorf("promote %s: read shard %s after %q: %w", name, sh.ID, pos.Seq, err)
			}
			if b.Trimmed {
				return fmt.Errorf("%w: the stream no longer holds shard %s's records after %s, where namespace %s ended; run pulse replay --namespace %s again to catch up from the archive, then promote",
					namespace.ErrConflict, sh.ID, pos.Seq, name, name)
			}
			return nil
		})
	}
	return g.Wait()
}
