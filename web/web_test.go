package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gin-gonic/gin"
)

// TestTrackerSize holds the tracker to its budget: under 2 KiB gzipped
// without extensions, at most 2.5 KiB with any or all of them.
func TestTrackerSize(t *testing.T) {
	tests := []struct {
		extensions []string
		max        int // gzipped bytes, inclusive
	}{
		{nil, 2047},
		{[]string{"404"}, 2560},
		{[]string{"exclusions"}, 2560},
		{[]string{"file-downloads"}, 2560},
		{[]string{"hash"}, 2560},
		{[]string{"outbound-links"}, 2560},
		{[]string{"outbound-links", "file-downloads"}, 2560},
		{Extensions(), 2560},
	}
	for _, tt := range tests {
		raw, gz, err := TrackerSize(tt.extensions...)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("tracker with %v: %d bytes, %d gzipped", tt.extensions, raw, gz)
		if raw == 0 {
			t.Errorf("tracker with %v is empty", tt.extensions)
		}
		if gz > tt.max {
			t.Errorf("tracker with %v is %d bytes gzipped, over its %d byte budget", tt.extensions, gz, tt.max)
		}
	}
	if _, _, err := TrackerSize("nope"); err == nil {
		t.Error("TrackerSize of an unknown extension: no error")
	}
}

func bundleBuilt(t *testing.T) bool {
	t.Helper()
	_, err := files.Open(bundle)
	return err == nil
}

func TestHandler(t *testing.T) {
	built := bundleBuilt(t)
	dashStatus, dashBody := http.StatusServiceUnavailable, "bundle not built: run <code>make web</code>"
	if built {
		dashStatus, dashBody = http.StatusOK, `src="assets/dashboard.js"`
	}
	tests := []struct {
		name, method, path string
		status             int
		contentType        string
		cacheControl       string
		body               string // a substring of the body
	}{
		{"dashboard", "GET", "/", dashStatus, "text/html; charset=utf-8", "", dashBody},
		{"tracker", "GET", "/tracker.js", 200, "application/javascript", "public, max-age=300", `data-pulse-click`},
		{"tracker head", "HEAD", "/tracker.js", 200, "application/javascript", "public, max-age=300", ""},
		{"demo index", "GET", "/demo/", 200, "text/html; charset=utf-8", "no-cache", `data-pulse-click="signup"`},
		{"demo route fallback", "GET", "/demo/pricing", 200, "text/html; charset=utf-8", "no-cache", `data-pulse-click="buy"`},
		{"demo deep fallback", "GET", "/demo/a/b?x=1", 200, "text/html; charset=utf-8", "no-cache", `src="/tracker.js"`},
		{"demo redirect", "GET", "/demo", http.StatusMovedPermanently, "", "", ""},
		{"app css", "GET", "/assets/app.css", 200, "text/css; charset=utf-8", "no-cache", "#conn-state"},
		{"dist readme hidden", "GET", "/assets/README.md", 404, "", "", ""},
		{"dashboard html not an asset", "GET", "/assets/index.html", 404, "", "", ""},
		{"unknown", "GET", "/nope", 404, "", "", ""},
		{"post refused", "POST", "/tracker.js", http.StatusMethodNotAllowed, "", "", ""},
	}
	if built {
		tests = append(tests,
			struct {
				name, method, path string
				status             int
				contentType        string
				cacheControl       string
				body               string
			}{"bundle", "GET", "/assets/dashboard.js", 200, "application/javascript", "no-cache", "uplot"},
		)
	}
	h := Handler(Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			res := rec.Result()
			if res.StatusCode != tt.status {
				t.Fatalf("%s %s: status %d, want %d", tt.method, tt.path, res.StatusCode, tt.status)
			}
			if tt.contentType != "" && res.Header.Get("Content-Type") != tt.contentType {
				t.Errorf("Content-Type %q, want %q", res.Header.Get("Content-Type"), tt.contentType)
			}
			if tt.cacheControl != "" && res.Header.Get("Cache-Control") != tt.cacheControl {
				t.Errorf("Cache-Control %q, want %q", res.Header.Get("Cache-Control"), tt.cacheControl)
			}
			if !strings.Contains(strings.ToLower(rec.Body.String()), strings.ToLower(tt.body)) {
				t.Errorf("body lacks %q", tt.body)
			}
		})
	}
}

func TestHandlerWithoutBundle(t *testing.T) {
	tree := fstest.MapFS{
		"tracker.js":           {Data: []byte("/* tracker */")},
		"demo/index.html":      {Data: []byte("<!doctype html>demo")},
		"dashboard/index.html": {Data: []byte(`<script src="assets/dashboard.js"></script>`)},
		"dashboard/app.css":    {Data: []byte("body{}")},
		"dist/README.md":       {Data: []byte("placeholder")},
	}
	h := newHandler(tree, Config{})
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/", http.StatusServiceUnavailable, "bundle not built: run <code>make web</code>"},
		{"/assets/dashboard.js", http.StatusNotFound, ""},
		{"/assets/app.css", http.StatusOK, "body{}"},
		{"/tracker.js", http.StatusOK, "tracker"},
		{"/demo/x", http.StatusOK, "demo"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
		if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("GET %s: %d %q, want %d with %q", tt.path, rec.Code, rec.Body.String(), tt.status, tt.body)
		}
	}
	tree["dist/dashboard.js"] = &fstest.MapFile{Data: []byte("bundle")}
	rec := httptest.NewRecorder()
	newHandler(tree, Config{}).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "assets/dashboard.js") {
		t.Errorf("GET / with a bundle: %d %q", rec.Code, rec.Body.String())
	}
}

func TestHandlerGzipAndETag(t *testing.T) {
	h := Handler(Config{})
	req := httptest.NewRequest("GET", "/tracker.js", nil)
	req.Header.Set("Accept-Encoding", "br, gzip")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", rec.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatalf("gunzip tracker: %v", err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip tracker: %v", err)
	}
	src, _ := files.ReadFile("tracker.js")
	want, err := buildTracker(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != string(want) {
		t.Fatal("gzipped tracker differs from tracker.js without its extensions")
	}
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req = httptest.NewRequest("GET", "/tracker.js", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Fatalf("revalidation: status %d, want 304", rec.Code)
	}
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"deflate, gzip;q=1.0, *;q=0.5", true},
		{"GZIP", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"br", false},
		{"x-gzip", false},
	}
	for _, tt := range tests {
		if got := acceptsGzip(tt.header); got != tt.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

func TestRegister(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// Routes the other roles add beside these must not conflict with them.
	r.GET("/v1/metrics", func(c *gin.Context) { c.String(200, "metrics") })
	r.GET("/healthz", func(c *gin.Context) { c.String(200, "ok") })
	Register(r, Config{})
	tests := []struct {
		path   string
		status int
	}{
		{"/tracker.js", 200},
		{"/demo/", 200},
		{"/demo/about", 200},
		{"/demo", http.StatusMovedPermanently},
		{"/assets/app.css", 200},
		{"/healthz", 200},
		{"/v1/metrics", 200},
		{"/tracker.hash.outbound-links.js", 200},
		{"/tracker.file-downloads.exclusions.404.js", 200},
		{"/tracker.nope.js", 404},
		{"/tracker.hash.hash.js", 404},
		{"/tracker.hash.js/x", 404},
		{"/tracker.", 404},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
		if rec.Code != tt.status {
			t.Errorf("GET %s: status %d, want %d", tt.path, rec.Code, tt.status)
		}
	}
}
