// Package node is one `pulse serve` process: its roles built from a
// Config, run under one errgroup, stopped in the documented order (Run).
package node

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

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"

	"github.com/pulsehq/pulse/access"
	"github.com/pulsehq/pulse/internal/readiness"
	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/ratelimit"
)

// Run runs the roles cfg asks for until ctx is done or the process gets
// SIGINT or SIGTERM, logging to log. It returns nil for such a stop, else
// what made the node fail.
//
// Start: the HTTP listener comes first, answering /healthz 200 and /readyz
// 503 naming what start-up waits for (other routes 503 with Retry-After).
// Then Redis, the stream and the namespace registry are brought up, each
// retried with capped backoff while it is not ready yet; a signal meanwhile
// ends the process cleanly. Then the roles are built, each by one function
// (roles.go) returning its runner and routes, and one errgroup runs every
// runner; the routes are served from then on.
//
// Stop (docs/operations.md, "Stopping a node"), in this order:
//  1. /readyz answers 503 "shutting down" while every route still answers,
//     each answer closing its connection so that clients reconnect,
//     through the load balancer, elsewhere;
//  2. --drain-delay passes: load balancers see /readyz and stop sending;
//  3. http.Server.Shutdown stops accepting and waits (up to 15 s) for the
//     requests in flight: every 202 answered is durable;
//  4. the workers stop: WebSockets close with 1001, the aggregator stops
//     between commits (each is all or nothing), the archiver flushes;
//  5. the stream and the stores close.
//
// A second signal during the stop ends the process at once.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	return run(ctx, cfg, log, nil)
}

// run is Run, calling listening (when not nil) with the address of the
// HTTP listener once it is open.
func run(parent context.Context, cfg Config, log *slog.Logger, listening func(net.Addr)) error {
	ctx, stopSignals := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	n, err := newNode(cfg, log)
	if err != nil {
		return err
	}
	// The workers outlive ctx: they stop only once the HTTP server drained.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	work, workCtx := errgroup.WithContext(workCtx)
	srv, err := n.listen(workCtx, work, listening)
	if err != nil {
		return err
	}
	router, check, err := n.start(ctx, workCtx, work)
	if err == nil {
		n.gate.Serve(router, check)
		log.Info("pulse serving", "addr", cfg.Addr, "roles", strings.Join(cfg.RoleNames(), ","),
			"stream", cfg.Stream, "redis", redactURL(cfg.Redis), "data", cfg.Data)
		select {
		case <-ctx.Done():
		case <-workCtx.Done(): // a runner failed
		}
	}
	signalled := ctx.Err() != nil
	stopSignals()
	return n.stop(workCtx, signalled, srv, stopWork, work, err)
}

// node is one `pulse serve` process: what its parts share.
type node struct {
	cfg        Config
	log        *slog.Logger
	reg        *prometheus.Registry
	cat        *metric.Catalog
	tokens     *access.Tokens
	readTok    string
	readTokSrc tokenSource
	limiter    *ratelimit.Limiter
	gate       *readiness.Gate
	closers    []func() // the stream and stores, closed last, in reverse
}

// privateDataDir creates the data dir readable by its owner only: it holds
// the tokens, the raw events of every site and the archive. A dir that an
// older Pulse created 0755 is tightened to 0700, which also closes what is
// inside it to other users, whatever the files' own modes.
func privateDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("stat data dir %s: %w", dir, err)
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s is %v, readable by other users; chmod 700: %w", dir, fi.Mode().Perm(), err)
	}
	log.Warn("data dir was open to other users; tightened", "dir", dir, "was", fi.Mode().Perm().String(), "now", "-rwx------")
	return nil
}

// newNode reads what needs no dependency: the data dir, tokens, metric
// catalog, rate limits. Its errors are the operator's to fix: they end the
// process before it listens.
func newNode(cfg Config, log *slog.Logger) (*node, error) {
	if err := privateDataDir(cfg.Data, log); err != nil {
		return nil, err
	}
	n := &node{cfg: cfg, log: log, reg: prometheus.NewRegistry(), gate: readiness.New(log.With("part", "start"))}
	var err error
	if n.readTok, n.readTokSrc, err = loadOrCreateToken(cfg.ReadToken, cfg.Data, "read-token"); err != nil {
		return nil, err
	}
	adminTok, _, err := loadOrCreateToken(cfg.AdminToken, cfg.Data, "admin-token")
	if err != nil {
		return nil, err
	}
	if n.tokens, err = buildTokens(cfg.Harden, n.readTok, adminTok, log); err != nil {
		return nil, err
	}
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if n.cat, err = loadCatalog(cfg.MetricsConfig); err != nil {
		return nil, err
	}
	n.limiter = ratelimit.New(ratelimit.Config{
		PerIP: rateLimit(cfg.RateIP), PerSite: rateLimit(cfg.RateSite), ClientShare: cfg.SiteClientShare,
		TrustedProxies: cfg.TrustedProxies, MaxConnsPerIP: cfg.Harden.MaxConnsPerIP, Registerer: n.reg,
	})
	return n, nil
}

// listen opens the HTTP listener, serving the readiness gate, and the
// admin (pprof) listener when asked; both are runners of work.
func (n *node) listen(workCtx context.Context, work *errgroup.Group, listening func(net.Addr)) (*http.Server, error) {
	ln, err := net.Listen("tcp", n.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", n.cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           n.gate,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	printDashboardURL(n.cfg, ln.Addr(), n.readTok, n.readTokSrc)
	if listening != nil {
		listening(ln.Addr())
	}
	work.Go(func() error { return ignoreClosed(srv.Serve(ln)) })
	if n.cfg.AdminAddr != "" {
		// pprof on its own listener, off by default: profiles expose
		// internals and cost CPU, so they never share the public port.
		admin := &http.Server{Addr: n.cfg.AdminAddr, Handler: adminMux(), ReadHeaderTimeout: 5 * time.Second}
		work.Go(func() error {
			go func() { <-workCtx.Done(); admin.Close() }()
			if err := ignoreClosed(admin.ListenAndServe()); err != nil {
				return fmt.Errorf("admin listener %s: %w", n.cfg.AdminAddr, err)
			}
			return nil
		})
		n.log.Info("admin listener (pprof)", "addr", n.cfg.AdminAddr)
	}
	return srv, nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// stop shuts the node down in the order Run documents. It returns what
// made the node stop: nil for a signal or the end of ctx (also during start-up), else the
// start-up error or the first runner's.
func (n *node) stop(workCtx context.Context, signalled bool, srv *http.Server, stopWork context.CancelFunc, work *errgroup.Group, startErr error) error {
	n.gate.Drain()
	if startErr == nil && signalled && n.cfg.DrainDelay > 0 {
		n.log.Info("pulse draining: /readyz answers 503 until the listener closes", "drain_delay", n.cfg.DrainDelay)
		select {
		case <-time.After(n.cfg.DrainDelay):
		case <-workCtx.Done():
		}
	}
	n.log.Info("pulse shutting down")
	shCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		n.log.Warn("http shutdown", "err", err)
	}
	stopWork()
	err := work.Wait()
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	switch {
	case startErr != nil && !signalled:
		return startErr
	case errors.Is(err, context.Canceled):
		return nil
	}
	return err
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

func printDashboardURL(cfg Config, addr net.Addr, token string, src tokenSource) {
	base := cfg.PublicURL
	if base == "" {
		port := "8080"
		if ta, ok := addr.(*net.TCPAddr); ok {
			port = fmt.Sprint(ta.Port)
		}
		base = "http://localhost:" + port
	}
	terminal := term.IsTerminal(int(os.Stderr.Fd()))
	fmt.Fprint(os.Stderr, dashboardNotice(base, token, src, filepath.Join(cfg.Data, "read-token"), terminal))
}

// dashboardNotice is what the start prints about the dashboard. The URL
// carries the all-sites read token only when this start generated it and
// stderr is a terminal: a configured token (fleet nodes) is the operator's
// already, and stderr that is not a terminal is a log file or a collector,
// where a secret must not go. Otherwise it says where the token is.
func dashboardNotice(base, token string, src tokenSource, tokenFile string, terminal bool) string {
	base = strings.TrimRight(base, "/")
	dash := base + "/"
	var where string
	switch {
	case src == tokenGenerated && terminal:
		dash += "?token=" + token
	case src == tokenGiven:
		where = "  Read token:      the read token you configured (--read-token / PULSE_READ_TOKEN); open " + base + "/?token=TOKEN\n"
	default:
		where = "  Read token:      in " + tokenFile + "; open " + base + "/?token=TOKEN\n"
	}
	return fmt.Sprintf("\n  Pulse dashboard: %s\n%s  Demo page:       %s/demo/\n\n", dash, where, base)
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

// routed registers the routes of parts on a new router.
func (n *node) routed(parts []part) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.ContextWithFallback = true
	for _, p := range parts {
		if p.routes != nil {
			p.routes(r)
		}
	}
	logRoutes(n.log, r)
	return r
}
