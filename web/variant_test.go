package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestVariantKey(t *testing.T) {
	tests := []struct {
		file, key string
		ok        bool
	}{
		{"tracker.js", "", true},
		{"tracker.hash.js", "hash", true},
		{"tracker.outbound-links.file-downloads.hash.js", "file-downloads.hash.outbound-links", true},
		{"tracker.hash.outbound-links.file-downloads.js", "file-downloads.hash.outbound-links", true},
		{"tracker.404.exclusions.file-downloads.hash.outbound-links.js", "404.exclusions.file-downloads.hash.outbound-links", true},
		{"tracker.hash.hash.js", "", false},
		{"tracker.local.js", "", false},
		{"tracker.Hash.js", "", false},
		{"tracker..js", "", false},
		{"tracker.hash..js", "", false},
		{"tracker.hashjs", "", false},
		{"tracker.hash.js.map", "", false},
		{"trackers.js", "", false},
		{"tracker." + strings.Repeat("hash.", 10000) + "js", "", false},
		{"tracker.hash.404.hash.404.js", "", false},
	}
	for _, tt := range tests {
		if key, ok := variantKey(tt.file); key != tt.key || ok != tt.ok {
			t.Errorf("variantKey(%q) = %q, %v; want %q, %v", tt.file, key, ok, tt.key, tt.ok)
		}
	}
}

func TestBuildTracker(t *testing.T) {
	src := "a\n  // comment\n\n  b/*<hash>*/ + h/*</hash>*/;\n/*<outbound-links|file-downloads>*/\nl1\n/*<file-downloads>*/\nf\n/*</file-downloads>*/\nl2\n/*</outbound-links|file-downloads>*/\nz\n"
	tests := []struct {
		on   []string
		want string
	}{
		{nil, "a\nb;\nz\n"},
		{[]string{"hash"}, "a\nb + h;\nz\n"},
		{[]string{"outbound-links"}, "a\nb;\nl1\nl2\nz\n"},
		{[]string{"file-downloads"}, "a\nb;\nl1\nf\nl2\nz\n"},
	}
	for _, tt := range tests {
		on := map[string]bool{}
		for _, n := range tt.on {
			on[n] = true
		}
		got, err := buildTracker([]byte(src), on)
		if err != nil || string(got) != tt.want {
			t.Errorf("buildTracker with %v = %q, %v; want %q", tt.on, got, err, tt.want)
		}
	}
	for _, bad := range []string{
		"/*<hash>*/ x",
		"x /*</hash>*/",
		"/*<hash>*/ /*<404>*/ /*</hash>*/ /*</404>*/",
		"/*<local>*/ x /*</local>*/",
		"/*<hash|nope>*/ x /*</hash|nope>*/",
	} {
		if _, err := buildTracker([]byte(bad), nil); err == nil {
			t.Errorf("buildTracker(%q): no error", bad)
		}
	}
}

// TestTrackerVariants serves each variant as /tracker.js is served and
// checks that it carries the code of its extensions and no other.
func TestTrackerVariants(t *testing.T) {
	marks := map[string]string{ // a string only that extension's code has
		"404":            `"404"`,
		"exclusions":     `data-exclude`,
		"file-downloads": `file-types`,
		"hash":           `hashchange`,
		"outbound-links": `Outbound Link: Click`,
	}
	h := Handler(Config{})
	get := func(path string, gz bool) *http.Response {
		req := httptest.NewRequest("GET", path, nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	base := get("/tracker.js", true)
	for _, p := range []string{"/tracker.js", "/tracker.hash.js", "/tracker.outbound-links.file-downloads.js",
		"/tracker.file-downloads.outbound-links.hash.404.exclusions.js", "/tracker.404.js", "/tracker.exclusions.js"} {
		res := get(p, true)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d", p, res.StatusCode)
		}
		for _, k := range []string{"Content-Type", "Cache-Control", "Content-Encoding", "Vary", "X-Content-Type-Options"} {
			if res.Header.Get(k) != base.Header.Get(k) {
				t.Errorf("GET %s: %s %q, /tracker.js has %q", p, k, res.Header.Get(k), base.Header.Get(k))
			}
		}
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			t.Fatalf("GET %s: gunzip: %v", p, err)
		}
		body, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("GET %s: gunzip: %v", p, err)
		}
		plain, _ := io.ReadAll(get(p, false).Body)
		if string(plain) != string(body) {
			t.Errorf("GET %s: the gzipped and plain bodies differ", p)
		}
		if strings.Contains(string(body), "/*<") || strings.Contains(string(body), "\n  ") {
			t.Errorf("GET %s: section marks or indentation left", p)
		}
		key, _ := variantKey(p[1:])
		for ext, mark := range marks {
			want := strings.Contains("."+key+".", "."+ext+".")
			if got := strings.Contains(string(body), mark); got != want {
				t.Errorf("GET %s: has %s's code (%q): %v, want %v", p, ext, mark, got, want)
			}
		}
	}
	// The variants are built once, when the handler is: what they hold is
	// the price of serving every one of them without work per request.
	held := 0
	for _, a := range newHandler(files, Config{}).trackers {
		held += len(a.body) + len(a.gz)
	}
	t.Logf("the 32 variants hold %d bytes, plain and gzipped", held)
	if held > 256<<10 {
		t.Errorf("the tracker's variants hold %d bytes, over 256 KiB", held)
	}
	for _, p := range []string{"/tracker.nope.js", "/tracker.hash.hash.js", "/tracker..js", "/tracker.hash.js/x"} {
		if res := get(p, false); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
	}
}
