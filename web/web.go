// Package web serves the browser side of Pulse from files embedded in the
// binary: the tracker script (/tracker.js, and its variants with
// extensions such as /tracker.outbound-links.hash.js), the live dashboard (/ and
// /assets/), and a small single-page demo site that uses the tracker
// (/demo/). The dashboard bundle in dist/ is built by build.sh (npm ci and
// esbuild); without it the package still compiles and / says so.
package web

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// files holds everything served. dist/ always has its README.md, so the
// embed pattern matches before the bundle is built.
//
//go:embed tracker.js demo dashboard dist
var files embed.FS

// bundle is the dashboard script esbuild writes; its absence means the
// bundle was not built.
const bundle = "dist/dashboard.js"

// Config configures what the package serves. The zero value serves the
// files as embedded.
type Config struct {
	// DedupWindow is how long the aggregator remembers an event id
	// (aggregator.Config.DedupWindow). It is written into /tracker.js,
	// whose queue drops what may have reached the server longer ago than
	// the server remembers, so that a resend cannot count twice. Zero: the
	// file's own value, the 10 minute default of pulse serve.
	DedupWindow time.Duration
}

// Handler returns the handler for the routes this package owns: GET and HEAD
// of /, /tracker.js and its variants (/tracker.EXT.EXT.js, Extensions in any
// order), /demo, /demo/... and /assets/...; any other path is 404.
// Mount it on those paths (or under / as a fallback). It is safe for
// concurrent use.
func Handler(cfg Config) http.Handler {
	return newHandler(files, cfg)
}

// trackerWindow is the tracker's dedup window as written in tracker.js, in
// ms; the handler replaces it with Config.DedupWindow.
const trackerWindow = "WIN = 6e5;"

// trackerSource returns the tracker with its dedup window set to window
// (unchanged when window is zero).
func trackerSource(src []byte, window time.Duration) ([]byte, error) {
	if window <= 0 {
		return src, nil
	}
	if n := bytes.Count(src, []byte(trackerWindow)); n != 1 {
		return nil, fmt.Errorf("set the dedup window of tracker.js: %q occurs %d times, want once", trackerWindow, n)
	}
	// Whole ms, rounded up: a sub-ms window is never rounded to 0, which
	// would drop every queued event.
	ms := (window + time.Millisecond - 1) / time.Millisecond
	return bytes.Replace(src, []byte(trackerWindow), []byte("WIN = "+strconv.FormatInt(int64(ms), 10)+";"), 1), nil
}

// newHandler serves the layout of files from fsys; tests give it other trees.
func newHandler(fsys fs.FS, cfg Config) *handler {
	// Sub cannot fail on these constant, valid names.
	demo, _ := fs.Sub(fsys, "demo")
	dash, _ := fs.Sub(fsys, "dashboard")
	dist, _ := fs.Sub(fsys, "dist")
	src, err := fs.ReadFile(fsys, "tracker.js")
	if err == nil {
		src, err = trackerSource(src, cfg.DedupWindow)
	}
	var built map[string][]byte
	if err == nil {
		built, err = variants(src)
	}
	if err != nil {
		// tracker.js is embedded, and tests check its window and sections:
		// a bug here.
		panic(err)
	}
	h := &handler{
		trackers:  make(map[string]*asset, len(built)),
		demoIndex: mustAsset(demo, "index.html", "no-cache"),
		demo:      dirAssets(demo, "no-cache", "index.html"),
		// The bundle and the dashboard's own CSS share /assets/; a name
		// built into dist/ wins.
		assets: dirAssets(dash, "no-cache", "index.html"),
	}
	for key, b := range built {
		// Every variant is cached and compressed as /tracker.js is.
		h.trackers[key] = bytesAsset("tracker.js", "public, max-age=300", b)
	}
	for name, a := range dirAssets(dist, "no-cache", "README.md") {
		h.assets[name] = a
	}
	if _, err := fs.Stat(fsys, bundle); err == nil {
		h.dashboard = mustAsset(dash, "index.html", "no-cache")
	}
	return h
}

// Register adds the package's routes to a gin router: GET and HEAD of /,
// /tracker.js, /tracker.:variant (the variants; any other name is 404),
// /demo, /demo/*path and /assets/*path.
func Register(r gin.IRouter, cfg Config) {
	h := gin.WrapH(Handler(cfg))
	for _, p := range []string{"/", "/tracker.js", "/tracker.:variant", "/demo", "/demo/*path", "/assets/*path"} {
		r.GET(p, h)
		r.HEAD(p, h)
	}
}

type handler struct {
	trackers  map[string]*asset // by variantKey
	dashboard *asset            // nil when the bundle is not built
	demoIndex *asset
	demo      map[string]*asset // files of demo/ other than index.html
	assets    map[string]*asset // /assets/NAME
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/":
		if h.dashboard == nil {
			serveUnbuilt(w)
			return
		}
		// The dashboard URL carries the read token: keep it out of Referer.
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
		h.dashboard.serve(w, r)
	case strings.HasPrefix(p, "/tracker.") && !strings.Contains(p[1:], "/"):
		key, ok := variantKey(p[1:])
		if a := h.trackers[key]; ok && a != nil {
			a.serve(w, r)
			return
		}
		http.NotFound(w, r)
	case p == "/demo":
		http.Redirect(w, r, "/demo/", http.StatusMovedPermanently)
	case strings.HasPrefix(p, "/demo/"):
		// A file of demo/ when one matches, else the single-page app, which
		// renders the route client-side.
		if a := h.demo[strings.TrimPrefix(path.Clean(p), "/demo/")]; a != nil {
			a.serve(w, r)
			return
		}
		h.demoIndex.serve(w, r)
	case strings.HasPrefix(p, "/assets/"):
		if a := h.assets[strings.TrimPrefix(p, "/assets/")]; a != nil {
			a.serve(w, r)
			return
		}
		http.NotFound(w, r)
	default:
		http.NotFound(w, r)
	}
}

const unbuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Pulse: bundle not built</title>
<link rel="stylesheet" href="/assets/app.css"></head>
<body><main class="unbuilt"><h1>Pulse dashboard</h1>
<p id="bundle-missing">bundle not built: run <code>make web</code> (web/build.sh), then rebuild pulse.</p>
<p>Ingest, queries and the tracker at <a href="/tracker.js">/tracker.js</a> work without it; see also the <a href="/demo/">demo site</a>.</p>
</main></body></html>
`

func serveUnbuilt(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(unbuiltPage))
}
