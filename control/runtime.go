package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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
	"github.com/pulsehq/pulse/query"
	"github.com/pulsehq/pulse/redisagg"
	"github.com/pulsehq/pulse/rowdir"
	"github.com/pulsehq/pulse/stats"
	"github.com/pulsehq/pulse/statsquery"
)

// Stream is the stream the live aggregator and the jobs read: stream/local
// or stream/kinesis. The aggregator reads it, so it is what the aggregator
// needs of a source.
type Stream interface {
	aggregator.Source
}

// Switcher moves its subscribers to a new namespace: push.Hub. It calls
// swap while no snapshot or delta is in flight, then resets every
// subscription from the new namespace (whose catalog is cat).
type Switcher interface {
	Switch(ctx context.Context, cat *metric.Catalog, swap func()) error
}

// Config configures a Runtime. Zero values mean the defaults given.
type Config struct {
	// Redis holds the aggregates of every namespace. Required.
	Redis redis.UniversalClient
	// Registry is where the namespace registry lives:
	// namespace.NewRedisBackend, or a file beside a store that forgets
	// everything at exit. Required.
	Registry namespace.Backend
	// Namespace and MetricsConfig (YAML; "" means the built-in metrics)
	// make the first namespace of a new registry; an existing registry
	// names its current namespace itself.
	Namespace     string
	MetricsConfig string
	// Volatile says the aggregate store forgets everything at exit (the
	// embedded Redis): at start, every namespace but the current one goes
	// back to building, for pulse replay to rebuild.
	Volatile bool
	// Stream is read by the live aggregator and the jobs; nil on a
	// push-only node, which runs neither.
	Stream Stream
	// Archive and ArchiveCheckpoints let replay and verify read what the
	// stream no longer holds; nil means the stream only.
	Archive            archive.ObjectStore
	ArchiveCheckpoints archiver.Checkpoints
	// Aggregate runs the live aggregator on the current namespace (the
	// aggregate role); it needs Stream.
	Aggregate bool
	// Group runs the live aggregator as one of a group of instances that
	// share the shards through leases; nil means alone over every shard.
	Group *Group
	// DedupWindow and AllowedLateness configure every aggregator, live or
	// in a job; 0 means the aggregator's defaults.
	DedupWindow     time.Duration
	AllowedLateness time.Duration
	// IdleTTL is redisagg.Config.IdleTTL of every namespace's store: how
	// long the checkpoint and delta-log keys of a quiet site live; 0: the
	// store's default.
	IdleTTL time.Duration
	// Now is the clock row files expire by; nil means time.Now.
	Now func() time.Time
	// RowDir, when set, keeps each namespace's Stats API fact rows in
	// files under RowDir/NAMESPACE (package rowdir) instead of Redis: the
	// embedded mode, whose Redis lives in process memory. Empty: in Redis.
	RowDir string
	// StatsCacheBytes bounds the decoded fact rows each namespace's Stats
	// API engine caches (statsquery.Config.CacheBytes); 0: its default.
	StatsCacheBytes int64
	// SiteZones answer a Stats API query that names no timezone in its
	// site's zone (stats.SiteZones).
	SiteZones stats.SiteZones
	// FollowEvery is how often the registry is polled; default 1s.
	FollowEvery time.Duration
	// Logger nil means don't log.
	Logger *slog.Logger
	// Registerer receives the live aggregator's metrics (and its lease
	// manager's); nil means not registered.
	Registerer prometheus.Registerer
}

// Group is how the live aggregator shares the shards with other instances
// (docs/scaling.md).
type Group struct {
	// Owner is this instance's id in the group; default hostname-pid-random.
	Owner string
	// LeaseTTL is the shard lease TTL; default 10s.
	LeaseTTL time.Duration
}

// View is one namespace as this node reads it. It does not change; a
// switch replaces it.
type View struct {
	Info    namespace.Info
	Catalog *metric.Catalog
	Store   *redisagg.Store
	// Stats answers the Stats API from the namespace's fact rows; its
	// cache of decoded hours lives as long as the view.
	Stats *statsquery.Engine
	rows  *rowdir.Dir // nil: the rows are in Redis
	query http.Handler
}

// ErrNoStream is returned by replay and verify on a node without a stream.
var ErrNoStream = errors.New("control: this node runs no stream (roles ingest, aggregate or archive): replay and verify need one")

var errStopped = errors.New("control: the runtime is not running")

// Runtime owns the current-namespace pointer of this node and what follows
// it: REST queries, the push hub and the live aggregator. It also runs the
// admin jobs (replay, verify). Safe for concurrent use; Run owns every
// goroutine it starts.
type Runtime struct {
	cfg Config
	reg *namespace.Registry
	log *slog.Logger

	cur atomic.Pointer[View]
	sw  Switcher // set before Run

	spawn   chan func(context.Context) error // work for Run's group
	stopped chan struct{}                    // closed once Run takes no more work

	switchMu sync.Mutex // one switch at a time
	aggMu    sync.Mutex // guards agg, aggStop, aggDone
	agg      *aggregator.Aggregator
	aggStop  context.CancelFunc
	aggDone  chan struct{}

	jobs jobTable
}

// New loads (or creates) the registry and opens the current namespace.
// With a Volatile store, namespaces other than the current one lost their
// aggregates with the last process: they go back to building.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Redis == nil || cfg.Registry == nil {
		return nil, errors.New("control: Redis and Registry are required")
	}
	if cfg.Aggregate && cfg.Stream == nil {
		return nil, errors.New("control: the live aggregator needs a Stream")
	}
	if cfg.FollowEvery <= 0 {
		cfg.FollowEvery = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Runtime{
		cfg: cfg, reg: namespace.New(cfg.Registry, namespace.Config{}), log: cfg.Logger,
		spawn: make(chan func(context.Context) error), stopped: make(chan struct{}),
		jobs: jobTable{jobs: map[string]*job{}},
	}
	info, err := r.reg.Bootstrap(ctx, cfg.Namespace, cfg.MetricsConfig)
	if err != nil {
		return nil, err // says what failed
	}
	if info.Name != cfg.Namespace {
		r.log.Info("namespace registry: current namespace differs from --namespace; the registry wins", "current", info.Name, "flag", cfg.Namespace)
	}
	if info.MetricsConfig != cfg.MetricsConfig {
		r.log.Warn("namespace registry: the current namespace keeps the metrics config it was built with; use pulse replay --metrics-config and pulse promote to change it", "namespace", info.Name)
	}
	if cfg.Volatile {
		if _, err := r.reg.Update(ctx, func(d *namespace.Doc) error {
			for i := range d.Namespaces {
				if d.Namespaces[i].State == namespace.Ready {
					d.Namespaces[i].State = namespace.Building
				}
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("mark namespaces building: %w", err)
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
func (r *Runtime) view(info namespace.Info, noDeltas bool) (*View, error) {
	cat, err := info.Catalog()
	if err != nil {
		return nil, fmt.Errorf("namespace %s: metrics config: %w", info.Name, err)
	}
	scfg := redisagg.Config{Namespace: info.Name, NoDeltas: noDeltas, IdleTTL: r.cfg.IdleTTL}
	var rows *rowdir.Dir
	if r.cfg.RowDir != "" {
		if rows, err = rowdir.Open(filepath.Join(r.cfg.RowDir, info.Name)); err != nil {
			return nil, fmt.Errorf("namespace %s: %w", info.Name, err)
		}
		scfg.RowFiles = rows
	}
	st := redisagg.New(r.cfg.Redis, cat, scfg)
	gin.SetMode(gin.ReleaseMode)
	eng := gin.New()
	eng.ContextWithFallback = true
	se := statsquery.New(st, statsquery.Config{Retention: cat.RowRetention(), CacheBytes: r.cfg.StatsCacheBytes, Counts: st})
	query.New(st, cat, query.Config{Logger: r.log.With("role", "query"), Stats: se, SiteZones: r.cfg.SiteZones}).Register(eng)
	return &View{Info: info, Catalog: cat, Store: st, Stats: se, rows: rows, query: eng}, nil
}

// Current is the current namespace's view.
func (r *Runtime) Current() *View { return r.cur.Load() }

// SetSwitcher makes every namespace switch go through sw (the push hub).
// Call it before Run.
func (r *Runtime) SetSwitcher(sw Switcher) { r.sw = sw }

// QueryHandler serves GET /v1/metrics, /v1/query and /v1/top from the
// current namespace.
func (r *Runtime) QueryHandler() gin.HandlerFunc {
	return func(c *gin.Context) { r.cur.Load().query.ServeHTTP(c.Writer, c.Request) }
}

// Snapshot serves redisagg.SourceStore (the push hub's Redis source) on the current namespace.
func (r *Runtime) Snapshot(ctx context.Context, q redisagg.SeriesQuery) (int64, redisagg.Result, error) {
	return r.cur.Load().Store.Snapshot(ctx, q)
}

// DeltaLogKey serves redisagg.SourceStore on the current namespace.
func (r *Runtime) DeltaLogKey(site, m string) string {
	return r.cur.Load().Store.DeltaLogKey(site, m)
}

// DeltaChannel serves redisagg.SourceStore on the current namespace.
func (r *Runtime) DeltaChannel(site, m string) string {
	return r.cur.Load().Store.DeltaChannel(site, m)
}

// Run starts the live aggregator (with Config.Aggregate) and follows the
// registry until ctx ends; it also runs the jobs the admin routes start.
// It returns once every goroutine it started stopped; an error of the
// live aggregator ends it. Call it once.
func (r *Runtime) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	r.switchMu.Lock()
	if r.cfg.Aggregate {
		task, err := r.startAggregator()
		if err != nil {
			r.switchMu.Unlock()
			close(r.stopped)
			return err
		}
		g.Go(func() error { return task(ctx) })
	}
	r.switchMu.Unlock()
	g.Go(func() error { return r.follow(ctx) })
	if r.cfg.RowDir != "" {
		g.Go(func() error { return r.expireRows(ctx) })
	}
	for {
		select {
		case fn := <-r.spawn:
			g.Go(func() error { return fn(ctx) })
		case <-ctx.Done():
			close(r.stopped)
			return g.Wait()
		}
	}
}

// expireRows removes the current namespace's row files past their
// retention every minute until ctx ends, as Redis expires row strings.
func (r *Runtime) expireRows(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		v := r.cur.Load()
		if v.rows == nil {
			continue
		}
		now := time.Now
		if r.cfg.Now != nil {
			now = r.cfg.Now
		}
		if err := v.rows.Expire(now(), v.Catalog.RowRetention()); err != nil {
			r.log.Warn("expire row files", "namespace", v.Info.Name, "err", err)
		}
	}
}

// dropRows removes the row files of namespace name, if rows live in files.
func (r *Runtime) dropRows(name string) error {
	if r.cfg.RowDir == "" {
		return nil
	}
	return rowdir.Reset(filepath.Join(r.cfg.RowDir, name))
}

// launch hands fn to Run, which runs it in its group with its context.
func (r *Runtime) launch(ctx context.Context, fn func(context.Context) error) error {
	select {
	case r.spawn <- fn:
		return nil
	case <-r.stopped:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// follow keeps this node on the registry's current namespace until ctx
// ends.
func (r *Runtime) follow(ctx context.Context) error {
	t := time.NewTicker(r.cfg.FollowEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := r.sync(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("namespace: follow the registry", "err", err)
		}
	}
}

// sync switches to the registry's current namespace if it changed: stop
// the live aggregator (the old namespace is final), swap the pointer under
// the push hub, then start the aggregator on the new namespace, where it
// continues from the positions stored there: those the replay ended at.
func (r *Runtime) sync(ctx context.Context) error {
	r.switchMu.Lock()
	defer r.switchMu.Unlock()
	d, err := r.reg.Load(ctx)
	if err != nil {
		return err
	}
	old := r.cur.Load()
	if d.Current == "" || d.Current == old.Info.Name {
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
	running := r.stopAggregator()
	swap := func() { r.cur.Store(v) }
	if r.sw != nil {
		if err := r.sw.Switch(ctx, v.Catalog, swap); err != nil {
			return fmt.Errorf("push switch: %w", err)
		}
	} else {
		swap()
	}
	r.log.Info("namespace switched", "from", old.Info.Name, "to", v.Info.Name)
	if !running {
		return nil
	}
	task, err := r.startAggregator()
	if err != nil {
		return err
	}
	if err := r.launch(ctx, task); err != nil {
		r.abandonAggregator()
		return err
	}
	return nil
}
