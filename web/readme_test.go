package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestReadmeSnippet runs the tracker snippet of the repository's README
// as written (but for data-allow-localhost), in Chromium: the custom event it sends before the deferred
// tracker has loaded must reach the collector, with its props.
func TestReadmeSnippet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Chromium")
	}
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	snippet := readmeHTML(t, string(b))
	c := newCollector()
	mux := http.NewServeMux()
	mux.Handle("/v1/collect", c)
	mux.Handle("/", Handler(Config{}))
	var page string
	mux.HandleFunc("/readme.html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><title>README</title><body>" + page + "</body>"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	// The test's server is on 127.0.0.1, where the tracker sends nothing
	// unless the page opts in; the README's page is on a real domain.
	page = strings.ReplaceAll(snippet, "https://pulse.example.com", srv.URL)
	page = strings.Replace(page, ` data-site=`, ` data-allow-localhost data-site=`, 1)

	tab := newTab(t, newBrowser(t))
	do(t, tab, "open the README's snippet", chromedp.Navigate(srv.URL+"/readme.html"), chromedp.WaitReady("body"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c.wait(ctx, t, "the README's custom event", func(reqs []collected) bool {
		for _, e := range accepted(reqs) {
			if e.Type == "signup" && e.Props["plan"] == "pro" {
				return true
			}
		}
		return false
	})
}

// readmeHTML is the html block after "Put the tracker on a page:".
func readmeHTML(t *testing.T, readme string) string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "Put the tracker on a page:")
	if !ok {
		t.Fatal(`README.md has no "Put the tracker on a page:"`)
	}
	_, rest, ok = strings.Cut(rest, "```html\n")
	if !ok {
		t.Fatal("README.md: no html block after the tracker's heading")
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("README.md: the html block does not end")
	}
	return block
}
