package push

import (
	"fmt"

	"golang.org/x/time/rate"
)

// CodeForbidden is the error code of a subscription to a site that the
// connection's read token does not grant; the connection stays open.
const CodeForbidden = "forbidden"

// SiteTokenChecker is a TokenChecker whose tokens may grant only some
// sites. When Config.Tokens implements it, every subscribe is checked
// against the token the connection authenticated with.
type SiteTokenChecker interface {
	TokenChecker
	ReadSite(token, site string) bool
}

// Defaults of the client message rate (Config.MessageRate, MessageBurst).
const (
	DefaultMessageRate  = 20
	DefaultMessageBurst = 100
)

// siteAllowed reports whether the connection's token grants site. Called
// under sessMu.
func (c *conn) siteAllowed(site string) bool {
	sc, ok := c.h.cfg.Tokens.(SiteTokenChecker)
	return !ok || sc.ReadSite(c.token, site)
}

func forbidden(site string) string {
	return fmt.Sprintf("this read token does not grant site %q", site)
}

// newMessageLimiter returns the token bucket of one connection's client
// messages, or nil when the rate is not limited.
func (c Config) newMessageLimiter() *rate.Limiter {
	if c.MessageRate < 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(c.MessageRate), c.MessageBurst)
}

// allowMessage takes one client message from the connection's bucket.
// Only the reader calls it.
func (c *conn) allowMessage() bool {
	return c.msgs == nil || c.msgs.AllowN(c.h.cfg.Now(), 1)
}
