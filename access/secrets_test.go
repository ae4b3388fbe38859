package access

import (
	"strings"
	"testing"
)

// TestWeakSecrets: every way a secrets file can hold a weak or misplaced
// secret is refused with the file and line, and the error never shows
// the secret (each case's secret holds "SeCrEt", which no message does).
func TestWeakSecrets(t *testing.T) {
	known := []string{"configured-site-name"}
	tokens := []struct{ name, in, msg string }{
		{"1-byte token", "S=shop\n", "f:1: token must be 16 to 512 bytes"},
		{"15-byte token", "SeCrEt-01234567=shop\n", "f:1: token must be 16 to 512 bytes"},
		{"swapped, short site first", "shop=SeCrEt-tok-0123456789\n", "f:1: token must be 16 to 512 bytes"},
		{"swapped, secret not a site id", "a-very-long-site-name=SeCrEt+tok/0123456789\n", "f:1: site 1 of the list is not a site id"},
		{"swapped, secret shaped like a site id", "all-sites-0123456789=*\nthe-shop-site-name=secret-tok-0123456789\nother-token-0123456789=the-shop-site-name\n",
			"f:2: token equals a site id (named on f:3)"},
		{"token equal to a configured site", "configured-site-name=secret-0123456789\n", "f:1: token equals a site id (one of the configured sites)"},
		{"secret in a list", "good-token-0123456789=a,SeCrEt+0123456789\n", "f:1: site 2 of the list is not a site id"},
	}
	for _, tc := range tokens {
		t.Run("read tokens/"+tc.name, func(t *testing.T) {
			_, err := ParseReadTokens([]byte(tc.in), "f", known)
			checkRefusal(t, err, tc.msg)
		})
	}
	keys := []struct{ name, in, msg string }{
		{"1-byte key", "shop=S\n", "f:1: key must be 16 to 512 bytes"},
		{"15-byte key", "shop=SeCrEt-01234567\n", "f:1: key must be 16 to 512 bytes"},
		{"swapped, secret not a site id", "SeCrEt+key/0123456789=shop\n", "f:1: the text before = is not a site id"},
		{"swapped, secret shaped like a site id", "secret-0123456789=shop\n", "f:1: key must be 16 to 512 bytes"},
		{"swapped, both long", "blog=key-of-blog-0123456789\nsecret-key-0123456789=blog-site-name-longer\nblog-site-name-longer=key-0123456789abcdef\n",
			"f:2: key equals a site id (named on f:3)"},
		{"key equal to a configured site", "shop=configured-site-name\n", "f:1: key equals a site id (one of the configured sites)"},
		{"key equal to its own site", "the-shop-site-name=the-shop-site-name\n", "f:1: key equals a site id (named on f:1)"},
	}
	for _, tc := range keys {
		t.Run("write keys/"+tc.name, func(t *testing.T) {
			_, err := ParseWriteKeys([]byte(tc.in), "f", known)
			checkRefusal(t, err, tc.msg)
		})
	}
	for _, s := range []string{"", "S", "SeCrEt-01234567", "SeCrEt 0123456789abc", strings.Repeat("S", 513)} {
		if err := CheckSecret(s); err == nil || strings.Contains(err.Error(), "SeCrEt") || strings.Contains(err.Error(), "SS") {
			t.Errorf("CheckSecret of a %d-byte secret = %v, want an error that does not show it", len(s), err)
		}
	}
	if err := CheckSecret("SeCrEt-0123456789"); err != nil {
		t.Errorf("CheckSecret of a 17-byte secret: %v", err)
	}
}

func checkRefusal(t *testing.T, err error, msg string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), msg) {
		t.Fatalf("err %v, want %q", err, msg)
	}
	if strings.Contains(err.Error(), "SeCrEt") || strings.Contains(err.Error(), "secret-") {
		t.Errorf("error %q shows the secret", err)
	}
}
