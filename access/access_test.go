package access

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

func TestTokens(t *testing.T) {
	tk := NewTokens("r3ad", "adm1n")
	none := NewTokens("", "")
	cases := []struct {
		tok         string
		read, admin bool
	}{
		{"r3ad", true, false},
		{"adm1n", true, true},
		{"r3ad ", false, false},
		{"r3a", false, false},
		{"", false, false},
	}
	for _, tc := range cases {
		if got := tk.Read(tc.tok); got != tc.read {
			t.Errorf("Read(%q) = %v, want %v", tc.tok, got, tc.read)
		}
		if got := tk.Admin(tc.tok); got != tc.admin {
			t.Errorf("Admin(%q) = %v, want %v", tc.tok, got, tc.admin)
		}
		if none.Read(tc.tok) || none.Admin(tc.tok) {
			t.Errorf("empty tokens accept %q", tc.tok)
		}
	}
}

func TestRequireRead(t *testing.T) {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	tk := NewTokens("r3ad", "adm1n")
	r.GET("/v1/query", tk.RequireRead(), func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	r.GET("/admin", tk.RequireAdmin(), func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	cases := []struct {
		name, path, auth string
		want             int
	}{
		{"bearer", "/v1/query", "Bearer r3ad", http.StatusOK},
		{"bearer lower case", "/v1/query", "bearer r3ad", http.StatusOK},
		{"query parameter", "/v1/query?token=r3ad", "", http.StatusOK},
		{"admin reads", "/v1/query?token=adm1n", "", http.StatusOK},
		{"wrong", "/v1/query", "Bearer nope", http.StatusUnauthorized},
		{"basic scheme", "/v1/query", "Basic r3ad", http.StatusUnauthorized},
		{"missing", "/v1/query", "", http.StatusUnauthorized},
		{"read is not admin", "/admin?token=r3ad", "", http.StatusUnauthorized},
		{"admin", "/admin", "Bearer adm1n", http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			if tc.want == http.StatusUnauthorized {
				body := w.Body.String()
				if !strings.HasPrefix(body, `{"error":"token: `) {
					t.Errorf("body %s, want a JSON error", body)
				}
				if strings.Contains(body, "r3ad") || strings.Contains(body, "adm1n") {
					t.Errorf("body %s echoes a token", body)
				}
			}
		})
	}
}
