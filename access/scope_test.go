package access

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

func scopedTokens(t *testing.T) *Tokens {
	t.Helper()
	tk, err := New("adm1n", []ReadToken{
		{Token: "all-sites", Scope: AllSites()},
		{Token: "only-a", Scope: SitesScope("a")},
		{Token: "a-and-b", Scope: SitesScope("b", "a", "b")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestScopes(t *testing.T) {
	tk := scopedTokens(t)
	cases := []struct {
		tok, site string
		read      bool // Read(tok)
		readSite  bool // ReadSite(tok, site)
	}{
		{"all-sites", "a", true, true},
		{"all-sites", "zzz", true, true},
		{"only-a", "a", true, true},
		{"only-a", "b", true, false},
		{"a-and-b", "b", true, true},
		{"a-and-b", "c", true, false},
		{"adm1n", "c", true, true},
		{"only-", "a", false, false},
		{"", "a", false, false},
	}
	for _, tc := range cases {
		if got := tk.Read(tc.tok); got != tc.read {
			t.Errorf("Read(%q) = %v, want %v", tc.tok, got, tc.read)
		}
		if got := tk.ReadSite(tc.tok, tc.site); got != tc.readSite {
			t.Errorf("ReadSite(%q, %q) = %v, want %v", tc.tok, tc.site, got, tc.readSite)
		}
	}
	if tk.Admin("all-sites") {
		t.Error("a read token is admin")
	}
	if _, err := New("", []ReadToken{{Token: "x", Scope: AllSites()}, {Token: "x", Scope: SitesScope("a")}}); err != ErrDuplicateToken {
		t.Errorf("duplicate tokens: err %v", err)
	}
}

func TestRequireReadScope(t *testing.T) {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.GET("/v1/query", scopedTokens(t).RequireRead(), func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	cases := []struct {
		name, url, tok string
		want           int
		msg            string
	}{
		{"scoped own site", "/v1/query?site=a", "only-a", 200, ""},
		{"scoped other site", "/v1/query?site=b", "only-a", 403, `token: this read token does not grant site "b"`},
		{"scoped second site value", "/v1/query?site=a&site=b", "only-a", 403, `site "b"`},
		{"scoped no site", "/v1/query", "only-a", 200, ""},
		{"list", "/v1/query?site=b", "a-and-b", 200, ""},
		{"all sites", "/v1/query?site=q", "all-sites", 200, ""},
		{"admin", "/v1/query?site=q", "adm1n", 200, ""},
		{"bad token", "/v1/query?site=a", "only-b", 401, "token: missing or invalid read token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tc.url, nil)
			req.Header.Set("Authorization", "Bearer "+tc.tok)
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.msg == "" {
				return
			}
			var e struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, tc.msg) {
				t.Errorf("body %s, want an error containing %q", w.Body, tc.msg)
			}
			if strings.Contains(w.Body.String(), tc.tok) {
				t.Errorf("body %s echoes the token", w.Body)
			}
		})
	}
}

func TestParseReadTokens(t *testing.T) {
	good := "# read tokens\n\nall-token-0123456=*\n  only-a-token-0123 = a \nab-token-01234567==a,b\n"
	toks, err := ParseReadTokens([]byte(good), "tokens.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ tok, scope string }{{"all-token-0123456", "*"}, {"only-a-token-0123", "a"}, {"ab-token-01234567=", "a,b"}}
	if len(toks) != len(want) {
		t.Fatalf("%d tokens, want %d", len(toks), len(want))
	}
	for i, w := range want {
		if toks[i].Token != w.tok || toks[i].Scope.String() != w.scope {
			t.Errorf("token %d = %q %s, want %q %s", i, toks[i].Token, toks[i].Scope, w.tok, w.scope)
		}
	}
	bad := []struct{ name, in, msg string }{
		{"no equals", "secret-token\n", "tokens.txt:1: want TOKEN=SITES"},
		{"no sites", "# c\nsecret-token-0123456=\n", "tokens.txt:2: no sites"},
		{"bad site", "secret-token-0123456=Demo\n", `tokens.txt:1: site 1 of the list is not a site id`},
		{"star in list", "secret-token-0123456=a,*\n", `site 2 of the list is not a site id`},
		{"space in token", "secret token 0123456=a\n", "tokens.txt:1: token may hold only printable ASCII"},
		{"empty token", "=a\n", "tokens.txt:1: token must be 16 to 512 bytes"},
		{"long token", strings.Repeat("x", 513) + "=a\n", "token must be 16 to 512 bytes"},
		{"repeated", "secret-token-0123456=a\nsecret-token-0123456=b\n", "tokens.txt:2: token repeated (first on line 1)"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseReadTokens([]byte(tc.in), "tokens.txt", nil)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the token", err)
			}
		})
	}
}

func TestParseWriteKeys(t *testing.T) {
	wk, err := ParseWriteKeys([]byte("# keys\nshop = key-of-shop-0123456\nblog=key=with=equals=0123\n"), "keys.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	keyReq := func(hdr, v string) Key {
		r := httptest.NewRequest(http.MethodPost, "/v1/collect", nil)
		if hdr != "" {
			r.Header.Set(hdr, v)
		}
		return KeyFrom(r)
	}
	cases := []struct {
		name           string
		site           string
		key            Key
		required, okay bool
	}{
		{"header", "shop", keyReq("X-Pulse-Key", "key-of-shop-0123456"), true, true},
		{"bearer", "shop", keyReq("Authorization", "Bearer key-of-shop-0123456"), true, true},
		{"equals in key", "blog", keyReq("X-Pulse-Key", "key=with=equals=0123"), true, true},
		{"wrong key", "shop", keyReq("X-Pulse-Key", "key=with=equals=0123"), true, false},
		{"no key", "shop", keyReq("", ""), true, false},
		{"site without key", "demo", keyReq("", ""), false, false},
	}
	for _, tc := range cases {
		if req, ok := wk.Check(tc.site, tc.key); req != tc.required || ok != tc.okay {
			t.Errorf("%s: Check = %v, %v; want %v, %v", tc.name, req, ok, tc.required, tc.okay)
		}
	}
	bad := []struct{ name, in, msg string }{
		{"no equals", "shop\n", "keys.txt:1: want SITE=KEY"},
		{"bad site", "Shop=secret-0123456789\n", `keys.txt:1: the text before = is not a site id`},
		{"short key", "shop=secret-short\n", "keys.txt:1: key must be 16 to 512 bytes"},
		{"twice", "shop=secret-0123456789\nshop=secret-0123456789x\n", "keys.txt:2: the site has a key already (line 1)"},
		{"star origin", "shop=secret-0123456789 a.test,*\n", "keys.txt:1: origins: * is not allowed"},
		{"bad origin", "shop=secret-0123456789 a.test [secret\n", "keys.txt:1: origins: pattern 2 is not valid"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseWriteKeys([]byte(tc.in), "keys.txt", nil)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}

func TestOrigins(t *testing.T) {
	o := NewOrigins([]string{"*.example.com", "https://shop.test", "localhost:3000"})
	cases := []struct {
		origin string
		want   bool
	}{
		{"https://www.example.com", true},
		{"http://a.example.com", true},
		{"https://example.com", false},
		{"https://shop.test", true},
		{"http://shop.test", false},
		{"http://localhost:3000", true},
		{"http://pulse.internal:8080", true}, // same host
		{"https://evil.test", false},
		{"null", false},
		{"file://x", false},
		{"%zz", false},
	}
	for _, tc := range cases {
		if got := o.Allowed(tc.origin, "pulse.internal:8080"); got != tc.want {
			t.Errorf("Allowed(%q) = %v, want %v", tc.origin, got, tc.want)
		}
	}
	if !NewOrigins(nil).Allowed("null", "x") || !NewOrigins([]string{"a.test", "*"}).Any() {
		t.Error("an empty list or * must allow every origin")
	}
}

// TestWriteKeyPages: the origins listed on a write-keys line, the
// server-wide fallback, and the sites left without any.
func TestWriteKeyPages(t *testing.T) {
	wk, err := ParseWriteKeys([]byte("shop=key-of-shop-0123456 https://shop.example.com, *.shop.test\n"+
		"blog=key-of-blog-0123456\nnews = key-of-news-0123456 news.test\n"), "keys.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := wk.SitesWithoutOrigins(); !slices.Equal(got, []string{"blog"}) {
		t.Fatalf("SitesWithoutOrigins %v, want [blog]", got)
	}
	if got := wk.OrOrigins(NewOrigins([]string{"*"})).SitesWithoutOrigins(); !slices.Equal(got, []string{"blog"}) {
		t.Errorf("every-origin fallback gave blog pages: %v", got)
	}
	all := wk.OrOrigins(NewOrigins([]string{"blog.test"}))
	if got := all.SitesWithoutOrigins(); len(got) != 0 {
		t.Errorf("after the fallback, without origins: %v", got)
	}
	cases := []struct {
		keys         *WriteKeys
		site, origin string
		want         bool
	}{
		{wk, "shop", "https://shop.example.com", true},
		{wk, "shop", "http://shop.example.com", false},
		{wk, "shop", "https://a.shop.test", true},
		{wk, "shop", "http://anything.invalid", false},
		{wk, "shop", "null", false},
		{wk, "shop", "", false},
		{wk, "news", "http://news.test", true},
		{wk, "news", "https://shop.example.com", false},
		{wk, "blog", "http://blog.test", false},
		{all, "blog", "http://blog.test", true},
		{all, "shop", "http://blog.test", false}, // its own origins, not the fallback
		{wk, "demo", "http://news.test", false},  // no key, no pages
		{nil, "shop", "https://shop.example.com", false},
	}
	for _, tc := range cases {
		if got := tc.keys.PageAllowed(tc.site, tc.origin); got != tc.want {
			t.Errorf("PageAllowed(%s, %q) = %v, want %v", tc.site, tc.origin, got, tc.want)
		}
	}
	if req, ok := wk.Check("news", Key{}); !req || ok {
		t.Errorf("news without a key: Check = %v, %v", req, ok)
	}
}
