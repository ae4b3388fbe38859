package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/access"
)

const shopKey = "shop-write-key-0123456789"

func siteEv(id, site string) string {
	return `{"id":"` + id + `","site":"` + site + `","type":"click"}`
}

// TestAccessRules: the site allowlist, the Origin allowlist and write keys,
// on the JSON route and the pixel, each refusal with its status and
// message, and only the allowed events in the stream.
func TestAccessRules(t *testing.T) {
	cfg := Config{
		AllowedSites: []string{"demo", "shop"},
		Origins:      access.NewOrigins([]string{"*.example.com"}),
		WriteKeys:    access.NewWriteKeys(map[string]string{"shop": shopKey}).WithOrigins("shop", "shop.example.com"),
	}
	type hdrs map[string]string
	cases := []struct {
		name     string
		pixel    string // query of a GET /v1/collect.gif; "" for a POST of body
		body     string
		hdr      hdrs
		status   int
		accepted int
		errs     map[int]string // index: part of its reject message
		msg      string         // part of the answer's error
		acao     string         // Access-Control-Allow-Origin
	}{
		{name: "open site, no origin", body: siteEv("a1", "demo"), status: 202, accepted: 1},
		{name: "allowed origin", body: siteEv("a2", "demo"), hdr: hdrs{"Origin": "https://www.example.com"},
			status: 202, accepted: 1, acao: "https://www.example.com"},
		{name: "foreign origin", body: siteEv("a3", "demo"), hdr: hdrs{"Origin": "https://evil.test"},
			status: 403, msg: `origin: "https://evil.test" may not send events`},
		{name: "site not allowed, alone", body: siteEv("a4", "other"), status: 403,
			errs: map[int]string{0: `site: "other" is not accepted by this server`}, msg: "no event accepted"},
		{name: "site not allowed in a batch", body: "[" + siteEv("a5", "demo") + "," + siteEv("a6", "other") + `,{"id":"x"}]`,
			status: 202, accepted: 1, errs: map[int]string{1: `site: "other" is not accepted`, 2: "site: must match"}},
		{name: "keyed site without key or origin", body: siteEv("a7", "shop"), status: 403,
			errs: map[int]string{0: `key: site "shop" accepts events without an Origin only with its write key`}},
		{name: "keyed site with key", body: siteEv("a8", "shop"), hdr: hdrs{"X-Pulse-Key": shopKey}, status: 202, accepted: 1},
		{name: "keyed site with bearer key", body: siteEv("a9", "shop"), hdr: hdrs{"Authorization": "Bearer " + shopKey}, status: 202, accepted: 1},
		{name: "keyed site, wrong key", body: siteEv("a10", "shop"), hdr: hdrs{"X-Pulse-Key": shopKey + "x", "Origin": "https://www.example.com"},
			status: 403, errs: map[int]string{0: `key: wrong write key for site "shop"`}, acao: "https://www.example.com"},
		{name: "keyed site from an allowed page", body: siteEv("a11", "shop"), hdr: hdrs{"Origin": "https://shop.example.com"}, status: 202, accepted: 1, acao: "https://shop.example.com"},
		{name: "key for one site does not open another", body: "[" + siteEv("a12", "shop") + "," + siteEv("a13", "demo") + "]",
			hdr: hdrs{"X-Pulse-Key": "some-other-key-0123456"}, status: 202, accepted: 1, errs: map[int]string{0: "key: wrong write key"}},
		{name: "keyed site from another allowed page", body: siteEv("a14", "shop"), hdr: hdrs{"Origin": "https://www.example.com"}, status: 403,
			errs: map[int]string{0: `key: site "shop" accepts events without its write key only from its origins (see --write-keys), not from "https://www.example.com"`}, acao: "https://www.example.com"},
		{name: "pixel of a keyed site from another allowed page", pixel: "site=shop&type=pageview&id=p5", hdr: hdrs{"Referer": "https://www.example.com/"}, status: 403,
			msg: `only from its origins`},
		{name: "pixel from an allowed page", pixel: "site=shop&type=pageview&id=p1", hdr: hdrs{"Referer": "https://shop.example.com/cart"}, status: 202},
		{name: "pixel from a foreign page", pixel: "site=demo&type=pageview&id=p2", hdr: hdrs{"Referer": "https://evil.test/"}, status: 403, msg: "origin: "},
		{name: "pixel of a keyed site, no page", pixel: "site=shop&type=pageview&id=p3", status: 403, msg: `key: site "shop" accepts events without an Origin only with its write key`},
		{name: "pixel of a site not allowed", pixel: "site=other&type=pageview&id=p4", status: 403, msg: `site: "other" is not accepted`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub := &memPub{}
			r, _ := newServer(t, pub, cfg)
			var req *http.Request
			if tc.pixel != "" {
				req = httptest.NewRequest(http.MethodGet, "/v1/collect.gif?"+tc.pixel, nil)
			} else {
				req = httptest.NewRequest(http.MethodPost, "/v1/collect", strings.NewReader(tc.body))
			}
			req.Header.Set("User-Agent", chromeUA)
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s %v", w.Code, tc.status, w.Body, w.Header())
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != tc.acao {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tc.acao)
			}
			want := tc.accepted
			if tc.pixel != "" {
				if tc.status == 202 {
					want = 1
				}
				if tc.msg != "" && !strings.Contains(w.Header().Get("X-Pulse-Error"), tc.msg) {
					t.Errorf("X-Pulse-Error %q, want %q", w.Header().Get("X-Pulse-Error"), tc.msg)
				}
			} else {
				a := decodeAnswer(t, w)
				if a.Accepted != tc.accepted || len(a.Rejected) != len(tc.errs) || !strings.Contains(a.Error, tc.msg) {
					t.Fatalf("answer %+v, want %d accepted, %d rejected, error %q", a, tc.accepted, len(tc.errs), tc.msg)
				}
				for i, rj := range a.Rejected {
					if i > 0 && a.Rejected[i-1].Index >= rj.Index {
						t.Errorf("rejects out of order: %+v", a.Rejected)
					}
					if sub, ok := tc.errs[rj.Index]; !ok || !strings.Contains(rj.Error, sub) {
						t.Errorf("reject %+v, want %q", rj, sub)
					}
				}
				if strings.Contains(w.Body.String(), shopKey) {
					t.Error("answer echoes the key")
				}
			}
			if got := len(pub.events(t)); got != want {
				t.Errorf("%d events in the stream, want %d", got, want)
			}
		})
	}
}

func TestPreflightOrigins(t *testing.T) {
	r, reg := newServer(t, &memPub{}, Config{Origins: access.NewOrigins([]string{"*.example.com"})})
	cases := []struct {
		origin string
		status int
		acao   string
	}{
		{"https://www.example.com", http.StatusNoContent, "https://www.example.com"},
		{"https://evil.test", http.StatusForbidden, ""},
	}
	for _, tc := range cases {
		req := httptest.NewRequest(http.MethodOptions, "/v1/collect", nil)
		req.Header.Set("Origin", tc.origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != tc.status || w.Header().Get("Access-Control-Allow-Origin") != tc.acao {
			t.Errorf("%s: %d %v, want %d with ACAO %q", tc.origin, w.Code, w.Header(), tc.status, tc.acao)
		}
		if !strings.Contains(w.Header().Get("Vary"), "Origin") {
			t.Errorf("%s: no Vary: Origin", tc.origin)
		}
		if tc.status == http.StatusForbidden {
			var e struct{ Error string }
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.HasPrefix(e.Error, "origin: ") {
				t.Errorf("%s: body %s", tc.origin, w.Body)
			}
		}
	}
	wantMetric(t, reg, "pulse_ingest_rejected_total", map[string]string{"reason": "origin"}, 1)
}

// TestKeyedSitePages: with every origin allowed server-wide, a keyed site
// takes keyless events only from its own pages; a forged Origin, a
// Referer from elsewhere, or an Origin naming the server's Host opens
// nothing, and a key works from anywhere.
func TestKeyedSitePages(t *testing.T) {
	cfg := Config{WriteKeys: access.NewWriteKeys(map[string]string{"shop": shopKey}).
		WithOrigins("shop", "https://shop.example.com", "*.shop.test")}
	type hdrs map[string]string
	cases := []struct {
		name   string
		pixel  string // query of a GET /v1/collect.gif; "" for a POST of a shop event
		host   string
		hdr    hdrs
		status int
		msg    string // part of the reject's error, or of X-Pulse-Error
	}{
		{name: "any origin, no key", hdr: hdrs{"Origin": "http://anything.invalid"}, status: 403,
			msg: `key: site "shop" accepts events without its write key only from its origins (see --write-keys), not from "http://anything.invalid"`},
		{name: "listed origin", hdr: hdrs{"Origin": "https://shop.example.com"}, status: 202},
		{name: "listed origin, other scheme", hdr: hdrs{"Origin": "http://shop.example.com"}, status: 403, msg: "only from its origins"},
		{name: "listed host pattern", hdr: hdrs{"Origin": "http://www.shop.test"}, status: 202},
		{name: "null origin", hdr: hdrs{"Origin": "null"}, status: 403, msg: "only from its origins"},
		{name: "origin naming the server's host", host: "anything.invalid", hdr: hdrs{"Origin": "http://anything.invalid"}, status: 403, msg: "only from its origins"},
		{name: "no origin, no key", status: 403, msg: "without an Origin only with its write key"},
		{name: "key, no origin", hdr: hdrs{"X-Pulse-Key": shopKey}, status: 202},
		{name: "key, foreign origin", hdr: hdrs{"X-Pulse-Key": shopKey, "Origin": "http://anything.invalid"}, status: 202},
		{name: "wrong key, listed origin", hdr: hdrs{"X-Pulse-Key": shopKey + "x", "Origin": "https://shop.example.com"}, status: 403, msg: "wrong write key"},
		{name: "pixel, foreign referer", pixel: "site=shop&type=pageview&id=k1", hdr: hdrs{"Referer": "http://anything.invalid/x"}, status: 403, msg: "only from its origins"},
		{name: "pixel, listed referer", pixel: "site=shop&type=pageview&id=k2", hdr: hdrs{"Referer": "https://shop.example.com/cart"}, status: 202},
		{name: "pixel, no referer", pixel: "site=shop&type=pageview&id=k3", status: 403, msg: "without an Origin only with its write key"},
		{name: "pixel, key", pixel: "site=shop&type=pageview&id=k4&", hdr: hdrs{"X-Pulse-Key": shopKey}, status: 202},
		{name: "unkeyed site, any origin", pixel: "site=demo&type=pageview&id=k5", hdr: hdrs{"Referer": "http://anything.invalid/"}, status: 202},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub := &memPub{}
			r, _ := newServer(t, pub, cfg)
			req := httptest.NewRequest(http.MethodPost, "/v1/collect", strings.NewReader(siteEv("k0", "shop")))
			if tc.pixel != "" {
				req = httptest.NewRequest(http.MethodGet, "/v1/collect.gif?"+tc.pixel, nil)
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			req.Header.Set("User-Agent", chromeUA)
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s %v", w.Code, tc.status, w.Body, w.Header())
			}
			got := w.Header().Get("X-Pulse-Error")
			if tc.pixel == "" {
				a := decodeAnswer(t, w)
				got = ""
				for _, rj := range a.Rejected {
					got += rj.Error
				}
			}
			if !strings.Contains(got, tc.msg) || (tc.msg == "") != (got == "") {
				t.Errorf("error %q, want %q", got, tc.msg)
			}
			want := 0
			if tc.status == 202 {
				want = 1
			}
			if n := len(pub.events(t)); n != want {
				t.Errorf("%d events in the stream, want %d", n, want)
			}
		})
	}
}

// askedSites is a SiteList that admits the sites of ok, fails for
// "broken", and counts how often it is asked.
type askedSites struct {
	ok    map[string]bool
	asked int
}

func (l *askedSites) Admit(_ context.Context, site string) (msg, reason string, err error) {
	l.asked++
	switch {
	case site == "broken":
		return "", "", errors.New("redis down")
	case !l.ok[site]:
		return "site: " + site + " unknown", "site_not_allowed", nil
	}
	return "", "", nil
}

// TestKnownSites: a SiteList decides per run of one site (a request of 500
// events of one unknown site asks once), refuses events on their own, and
// its failure answers 503 with Retry-After, so the client sends again.
func TestKnownSites(t *testing.T) {
	var run []string
	for i := range 500 {
		run = append(run, siteEv("k"+strconv.Itoa(i), "new"))
	}
	cases := []struct {
		name     string
		body     string
		status   int
		accepted int
		asked    int
	}{
		{name: "known", body: siteEv("k1", "demo"), status: 202, accepted: 1, asked: 1},
		{name: "unknown run asks once", body: "[" + strings.Join(run, ",") + "]", status: 403, asked: 1},
		{name: "mixed", body: "[" + siteEv("k2", "demo") + "," + siteEv("k3", "new") + "," + siteEv("k4", "demo") + "]", status: 202, accepted: 2, asked: 3},
		{name: "list fails", body: siteEv("k5", "broken"), status: 503, asked: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			known := &askedSites{ok: map[string]bool{"demo": true}}
			pub := &memPub{}
			r, _ := newServer(t, pub, Config{Known: known, AllowedSites: []string{"ignored"}})
			req := httptest.NewRequest(http.MethodPost, "/v1/collect", strings.NewReader(tc.body))
			req.Header.Set("User-Agent", chromeUA)
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tc.status || known.asked != tc.asked {
				t.Fatalf("status %d after %d questions, want %d after %d: %.300s", w.Code, known.asked, tc.status, tc.asked, w.Body)
			}
			if tc.status == 503 && w.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if got := len(pub.events(t)); got != tc.accepted {
				t.Errorf("%d events in the stream, want %d", got, tc.accepted)
			}
		})
	}
}
