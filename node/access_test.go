package node

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/ingest"
)

// TestIngestAccessOrigins: keyed sites need origins, on their line or
// from --ingest-origins; start-up fails naming those without.
func TestIngestAccessOrigins(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		origins []string
		msg     string // "": no error
	}{
		{"origins on each line", "shop=key-of-shop-0123456 shop.test\n", nil, ""},
		{"origins from the flag", "shop=key-of-shop-0123456\n", []string{"*.example.com"}, ""},
		{"none", "shop=key-of-shop-0123456\nblog=key-of-blog-0123456\nnews=key-of-news-0123456 news.test\n", nil,
			"no origins for keyed sites blog, shop: "},
		{"flag allows every origin", "shop=key-of-shop-0123456\n", []string{"*"}, "no origins for keyed sites shop: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			var cfg ingest.Config
			err := ingestAccess(Harden{WriteKeysFile: path, IngestOrigins: tc.origins}, &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if tc.msg == "" {
				if err != nil || len(cfg.WriteKeys.SitesWithoutOrigins()) != 0 {
					t.Fatalf("err %v, keys without origins %v", err, cfg.WriteKeys.SitesWithoutOrigins())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "key-of") {
				t.Fatalf("err %v, want %q (and no key)", err, tc.msg)
			}
		})
	}
}

// TestTokensNotSiteNames: a --read-token or --admin-token equal to a site
// of --sites is refused, naming the flag and not the token; so is
// a read-tokens line whose token is such a site.
func TestTokensNotSiteNames(t *testing.T) {
	const site = "secret-site-0123456789"
	h := Harden{Sites: []string{"demo", site}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tokens := filepath.Join(t.TempDir(), "read-tokens")
	if err := os.WriteFile(tokens, []byte(site+"=demo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, read, admin, file, msg string
	}{
		{"read token", site, "admin-token-0123456789", "", "--read-token: the token equals a site id of --sites"},
		{"admin token", "read-token-0123456789", site, "", "--admin-token: the token equals a site id of --sites"},
		{"read-tokens line", "read-token-0123456789", "admin-token-0123456789", tokens, ":1: token equals a site id (one of the configured sites)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := h
			h.ReadTokensFile = tc.file
			_, err := buildTokens(h, tc.read, tc.admin, log)
			if err == nil || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), site) {
				t.Fatalf("err %v, want %q without the token", err, tc.msg)
			}
		})
	}
	if _, err := buildTokens(h, "read-token-0123456789", "admin-token-0123456789", log); err != nil {
		t.Errorf("tokens that are no site: %v", err)
	}
}
