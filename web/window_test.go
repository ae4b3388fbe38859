package web

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestTrackerWindow checks that the served tracker carries the configured
// dedup window in place of the file's own.
func TestTrackerWindow(t *testing.T) {
	src, _ := files.ReadFile("tracker.js")
	file, err := buildTracker(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		window time.Duration
		want   string // in the served tracker
	}{
		{0, trackerWindow},
		{3 * time.Second, "WIN = 3000;"},
		{24 * time.Hour, "WIN = 86400000;"},
		{1500 * time.Microsecond, "WIN = 2;"},
	}
	for _, tt := range tests {
		t.Run(tt.window.String(), func(t *testing.T) {
			rec := httptest.NewRecorder()
			Handler(Config{DedupWindow: tt.window}).ServeHTTP(rec, httptest.NewRequest("GET", "/tracker.js", nil))
			body, _ := io.ReadAll(rec.Body)
			if !strings.Contains(string(body), tt.want) {
				t.Errorf("served tracker lacks %q", tt.want)
			}
			if len(body) < len(file)-len(trackerWindow) || strings.Count(string(body), "WIN = ") != 1 {
				t.Errorf("served tracker is not the file with one window set: %d bytes, file %d", len(body), len(file))
			}
			rec = httptest.NewRecorder()
			Handler(Config{DedupWindow: tt.window}).ServeHTTP(rec, httptest.NewRequest("GET", "/tracker.outbound-links.hash.js", nil))
			if variant, _ := io.ReadAll(rec.Body); !strings.Contains(string(variant), tt.want) {
				t.Errorf("served variant lacks %q", tt.want)
			}
		})
	}
	if _, err := trackerSource([]byte("/* no window */"), time.Second); err == nil {
		t.Error("trackerSource of a file without the window: no error")
	}
}

// TestTrackerDropsOld preloads the tracker's queue with events of several
// ages, as a visit long ago or an offline spell leaves it, and checks that
// the next load sends only those younger than 0.8 of the dedup window: an
// older one may have reached the server (its answer lost) longer ago than
// the server remembers ids, so resending it could count it twice. The
// window comes from the served tracker, or from the Pulse-Dedup-Window
// header of an earlier answer when that is shorter.
func TestTrackerDropsOld(t *testing.T) {
	browser := newBrowser(t)
	tests := []struct {
		name   string
		served time.Duration // window written into tracker.js
		header string        // Pulse-Dedup-Window of the collector's answers
		ages   []float64     // of the queued events, in windows (the shorter one)
		sent   []bool        // whether each is sent
	}{
		{"window of the served tracker", time.Minute, "", []float64{0.1, 0.7, 0.85, 1.5, 500}, []bool{true, true, false, false, false}},
		{"shorter window learned from an answer", 10 * time.Minute, "60", []float64{0.5, 0.9, 5}, []bool{true, false, false}},
		{"longer window in an answer is not taken", time.Minute, "600", []float64{0.5, 0.9, 5}, []bool{true, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each case has its own collector and browser context
			c := newCollector()
			if tt.header != "" {
				c.header = http.Header{"Pulse-Dedup-Window": {tt.header}}
			}
			srv := newServerWith(t, c, Config{DedupWindow: tt.served})
			tab := newTab(t, browser)
			// A first visit: its pageview's answer teaches the header.
			do(t, tab, "first visit", chromedp.Navigate(srv.URL+"/demo/"), chromedp.WaitVisible(chromedp.ID("signup")))
			c.wait(tab, t, "first pageview", func(r []collected) bool { return len(accepted(r)) >= 1 })
			if _, err := chromedp.Run(tab, chromedp.Poll[chromedp.Void](`localStorage.getItem("pulse_q") === "[]"`)); err != nil {
				t.Fatalf("waiting for the tracker's queue to empty: %v", err)
			}
			do(t, tab, "leave", chromedp.Navigate(srv.URL+"/nothing"))

			window := tt.served
			if s := tt.header; s != "" {
				if h, _ := time.ParseDuration(s + "s"); h < window {
					window = h
				}
			}
			var queued []string
			for i, age := range tt.ages {
				queued = append(queued, fmt.Sprintf(`{id: "old-%d", site: "demo", type: "queued", url: location.origin + "/demo/", uid: "u", ts: now - %d}`,
					i, int64(age*float64(window.Milliseconds()))))
			}
			eval[any](t, tab, `(now => localStorage.setItem("pulse_q", JSON.stringify([`+strings.Join(queued, ",")+`])))(Date.now()); null`)
			do(t, tab, "second visit", chromedp.Navigate(srv.URL+"/demo/about"), chromedp.WaitVisible(chromedp.ID("signup")))
			// The second visit's own pageview goes with or after the queued
			// events (one queue, sent in order).
			reqs := c.wait(tab, t, "second pageview", func(r []collected) bool {
				for _, e := range accepted(r) {
					if e.Type == "pageview" && e.path() == "/demo/about" {
						return true
					}
				}
				return false
			})
			do(t, tab, "leave", chromedp.Navigate("about:blank"))
			got := map[string]bool{}
			for _, e := range accepted(reqs) {
				got[e.ID] = true
			}
			for i, age := range tt.ages {
				if id := fmt.Sprintf("old-%d", i); got[id] != tt.sent[i] {
					t.Errorf("event queued %.2f windows ago: sent %v, want %v: %s", age, got[id], tt.sent[i], dump(reqs))
				}
			}
		})
	}
}
