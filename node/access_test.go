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
