// Package access checks the read and admin tokens of REST and WebSocket
// requests. Tokens are compared in constant time and never logged.
package access

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// Tokens holds the read and admin tokens. It is safe for concurrent use.
type Tokens struct {
	read, admin []byte
}

// NewTokens returns the checker for read and admin. An empty token matches
// nothing: a deployment without an admin token has no admin access.
func NewTokens(read, admin string) *Tokens {
	return &Tokens{read: []byte(read), admin: []byte(admin)}
}

// Read reports whether tok grants reads. The admin token grants reads too.
func (t *Tokens) Read(tok string) bool { return match(t.read, tok) || t.Admin(tok) }

// Admin reports whether tok grants admin actions (replay, promote).
func (t *Tokens) Admin(tok string) bool { return match(t.admin, tok) }

func match(want []byte, tok string) bool {
	if len(want) == 0 || tok == "" {
		return false
	}
	return subtle.ConstantTimeCompare(want, []byte(tok)) == 1
}

// TokenFrom returns the token of r: from "Authorization: Bearer T", else from
// the token query parameter (browsers cannot set headers on a WebSocket).
func TokenFrom(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
	}
	return r.URL.Query().Get("token")
}

// RequireRead is gin middleware that answers 401 with a JSON error unless the
// request carries a read (or admin) token.
func (t *Tokens) RequireRead() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !t.Read(TokenFrom(c.Request)) {
			c.Header("WWW-Authenticate", `Bearer realm="pulse"`)
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{
				"error": "token: missing or invalid read token (send Authorization: Bearer TOKEN or ?token=TOKEN)"})
			return
		}
		c.Next()
	}
}

// RequireAdmin is gin middleware that answers 401 with a JSON error unless
// the request carries the admin token.
func (t *Tokens) RequireAdmin() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !t.Admin(TokenFrom(c.Request)) {
			c.Header("WWW-Authenticate", `Bearer realm="pulse"`)
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{
				"error": "token: missing or invalid admin token (send Authorization: Bearer TOKEN or ?token=TOKEN)"})
			return
		}
		c.Next()
	}
}
