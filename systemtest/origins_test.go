package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const pagesKey = "pages-site-write-key-0123"

// pagesKeysFile writes a write-keys file giving site pages its key and
// origins, for attackForgedOrigin.
func pagesKeysFile(t *testing.T) string {
	t.Helper()
	keys := filepath.Join(t.TempDir(), "write-keys")
	if err := os.WriteFile(keys, []byte("pages="+pagesKey+" https://pages.example.com,*.pages.test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return keys
}

// attackForgedOrigin is item 5 on a server started with pagesKeysFile: a
// forged Origin, or a pixel with a foreign Referer, is refused; a listed
// origin or the key works, and exactly those events count.
func attackForgedOrigin(t *testing.T, ctx context.Context, s *server) string {
	const ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
	ev := func(id string) []byte { return []byte(`{"id":"` + id + `","site":"pages","type":"pageview"}`) }
	hdr := func(kv ...string) map[string]string {
		m := map[string]string{"User-Agent": ua}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	pixel := func(id string) string { return "/v1/collect.gif?site=pages&type=pageview&id=" + id }
	const notListed = `key: site "pages" accepts events without its write key only from its origins`
	cases := []struct {
		hostileCase
		accepted int // JSON route only
	}{
		{hostileCase: hostileCase{name: "any Origin, no key", hdr: hdr("Origin", "http://anything.invalid"), body: ev("o1"), status: 403, msg: notListed}},
		{hostileCase: hostileCase{name: "Origin naming the Host", hdr: hdr("Origin", "http://"+s.addr), body: ev("o2"), status: 403, msg: notListed}},
		{hostileCase: hostileCase{name: "no Origin, no key", hdr: hdr(), body: ev("o3"), status: 403, msg: "accepts events without an Origin only with its write key"}},
		{hostileCase: hostileCase{name: "listed Origin", hdr: hdr("Origin", "https://pages.example.com"), body: ev("o4"), status: 202}, accepted: 1},
		{hostileCase: hostileCase{name: "listed host pattern", hdr: hdr("Origin", "http://www.pages.test"), body: ev("o5"), status: 202}, accepted: 1},
		{hostileCase: hostileCase{name: "key", hdr: hdr("X-Pulse-Key", pagesKey), body: ev("o6"), status: 202}, accepted: 1},
		{hostileCase: hostileCase{name: "key, foreign Origin", hdr: hdr("X-Pulse-Key", pagesKey, "Origin", "http://anything.invalid"), body: ev("o7"), status: 202}, accepted: 1},
		{hostileCase: hostileCase{name: "pixel, foreign Referer", method: http.MethodGet, path: pixel("o8"), hdr: hdr("Referer", "http://anything.invalid/page"), status: 403, msg: notListed}},
		{hostileCase: hostileCase{name: "pixel, listed Referer", method: http.MethodGet, path: pixel("o9"), hdr: hdr("Referer", "https://pages.example.com/cart"), status: 202}},
	}
	refused := 0
	for _, tc := range cases {
		status, accepted, msgs, err := s.do(ctx, tc.hostileCase)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if status == http.StatusForbidden {
			refused++
		}
		if status != tc.status || accepted != tc.accepted {
			t.Errorf("%s: status %d with %d accepted, want %d with %d: %q", tc.name, status, accepted, tc.status, tc.accepted, msgs)
			continue
		}
		if tc.msg != "" && !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, tc.msg) }) {
			t.Errorf("%s: no message contains %q: %q", tc.name, tc.msg, msgs)
		}
	}
	s.waitPageviews(t, ctx, "pages", 5)
	return fmt.Sprintf("%d forged or keyless requests for a keyed site got 403; the %d with a listed origin or the key counted, 5 pageviews exactly",
		refused, len(cases)-refused)
}
