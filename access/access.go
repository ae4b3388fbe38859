// Package access checks who may read and write: read tokens (each scoped to
// all sites or to a list of sites) and the admin token for REST and
// WebSocket reads, per-site write keys for server-side senders, and the
// Origins allowed to send browser events. Secrets are kept only as SHA-256
// hashes (read tokens looked up by hash, the admin token and write keys
// compared in constant time) and never logged or echoed.
package access

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// hash is the SHA-256 of a secret. Secrets are kept and looked up only as
// hashes: a lookup's timing can depend only on the hash of what the client
// sent, which tells it nothing about any token (finding a token from its
// hash prefix is a preimage attack); hashes are fixed-size, so nothing
// tells the length of a token either. The admin token and write keys,
// compared one to one, are compared in constant time as well.
type hash [sha256.Size]byte

func hashOf(s string) hash { return sha256.Sum256([]byte(s)) }

func (h *hash) equal(o *hash) bool { return subtle.ConstantTimeCompare(h[:], o[:]) == 1 }

// Scope is the set of sites a read token grants: all of them, or a list.
// The zero Scope grants no site.
type Scope struct {
	all   bool
	sites []string // sorted, unique
}

// AllSites is the scope of a token that reads every site.
func AllSites() Scope { return Scope{all: true} }

// SitesScope is the scope of a token that reads only the sites named.
func SitesScope(sites ...string) Scope {
	s := slices.Clone(sites)
	slices.Sort(s)
	return Scope{sites: slices.Compact(s)}
}

// Allows reports whether the scope grants site.
func (s Scope) Allows(site string) bool {
	if s.all {
		return true
	}
	_, ok := slices.BinarySearch(s.sites, site)
	return ok
}

// All reports whether the scope grants every site.
func (s Scope) All() bool { return s.all }

// Sites returns the sites of a limited scope (nil for AllSites).
func (s Scope) Sites() []string { return slices.Clone(s.sites) }

func (s Scope) String() string {
	if s.all {
		return "*"
	}
	return strings.Join(s.sites, ",")
}

// ReadToken is one read token and the sites it grants.
type ReadToken struct {
	Token string
	Scope Scope
	line  int // in its file, for messages
}

// Tokens holds the admin token and the read tokens. It is safe for
// concurrent use.
type Tokens struct {
	admin    hash
	hasAdmin bool
	read     map[hash]Scope
}

// ErrDuplicateToken is returned by New when two read tokens are equal.
var ErrDuplicateToken = errors.New("access: read token given twice")

// New returns the checker of admin and read tokens. An empty token matches
// nothing: without an admin token there is no admin access; empty read
// tokens are skipped. Two equal read tokens are an error, since their
// scopes would be ambiguous.
func New(admin string, read []ReadToken) (*Tokens, error) {
	t := &Tokens{read: make(map[hash]Scope, len(read))}
	if admin != "" {
		t.admin, t.hasAdmin = hashOf(admin), true
	}
	for _, r := range read {
		if r.Token == "" {
			continue
		}
		h := hashOf(r.Token)
		if _, dup := t.read[h]; dup {
			return nil, ErrDuplicateToken
		}
		t.read[h] = r.Scope
	}
	return t, nil
}

// NewTokens returns the checker of one read token for every site and the
// admin token; an empty token matches nothing.
func NewTokens(read, admin string) *Tokens {
	t, _ := New(admin, []ReadToken{{Token: read, Scope: AllSites()}}) // one token: no duplicate
	return t
}

// Scope returns the sites tok may read and whether tok is a read (or the
// admin) token at all. The admin token reads every site. The cost does not
// grow with the number of tokens: tok is hashed and looked up by hash.
func (t *Tokens) Scope(tok string) (Scope, bool) {
	if tok == "" {
		return Scope{}, false
	}
	h := hashOf(tok)
	if t.hasAdmin && h.equal(&t.admin) {
		return AllSites(), true
	}
	s, ok := t.read[h]
	return s, ok
}

// Read reports whether tok grants reads of at least one site.
func (t *Tokens) Read(tok string) bool {
	_, ok := t.Scope(tok)
	return ok
}

// ReadSite reports whether tok grants reads of site.
func (t *Tokens) ReadSite(tok, site string) bool {
	s, ok := t.Scope(tok)
	return ok && s.Allows(site)
}

// Admin reports whether tok grants admin actions (replay, promote).
func (t *Tokens) Admin(tok string) bool {
	if !t.hasAdmin || tok == "" {
		return false
	}
	h := hashOf(tok)
	return h.equal(&t.admin)
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
// request carries a read (or admin) token, and 403 when it names a site
// (the site query parameter, every value of it) that the token does not
// grant.
func (t *Tokens) RequireRead() gin.HandlerFunc {
	return func(c *gin.Context) {
		scope, ok := t.Scope(TokenFrom(c.Request))
		if !ok {
			c.Header("WWW-Authenticate", `Bearer realm="pulse"`)
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{
				"error": "token: missing or invalid read token (send Authorization: Bearer TOKEN or ?token=TOKEN)"})
			return
		}
		for _, site := range c.QueryArray("site") {
			if !scope.Allows(site) {
				c.AbortWithStatusJSON(http.StatusForbidden, Forbidden(site))
				return
			}
		}
		// In the request's context, not the gin context's keys: the read
		// routes are served by the current namespace's own engine.
		c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), scopeKey{}, scope))
		c.Next()
	}
}

// scopeKey is the request context key of the scope RequireRead granted,
// for routes that find the site in the body.
type scopeKey struct{}

// ScopeOf is the scope RequireRead granted the request; the zero Scope
// (no site) when RequireRead did not run.
func ScopeOf(r *http.Request) Scope {
	s, _ := r.Context().Value(scopeKey{}).(Scope)
	return s
}

// Forbidden is the 403 body of a read of a site the token does not grant.
func Forbidden(site string) gin.H {
	return gin.H{"error": "token: this read token does not grant site " + quoteSite(site)}
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

// quoteSite quotes a client-given site for a message, cut to a sane length.
func quoteSite(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}
