package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// Middleware limits requests per client IP (see ClientIP). A request over
// the limit is answered 429 with Retry-After in whole seconds (at least 1)
// and {"error":"rate limit: ..."}, and the chain is aborted.
func (l *Limiter) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		ip := l.ClientIP(c.Request)
		if ok, wait := l.AllowIP(ip, 1); !ok {
			secs := RetryAfter(wait)
			c.Header("Retry-After", strconv.Itoa(secs))
			c.AbortWithStatusJSON(http.StatusTooManyRequests, gin.H{
				"error": "rate limit: too many requests from this address, retry in " + strconv.Itoa(secs) + "s",
			})
			return
		}
		c.Next()
	}
}

// RetryAfter turns a wait into the value of a Retry-After header: whole
// seconds, rounded up, at least 1, since "0" invites an immediate retry
// that would be refused again.
func RetryAfter(wait time.Duration) int {
	s := math.Ceil(wait.Seconds())
	switch {
	case s < 1:
		return 1
	case s > math.MaxInt32:
		return math.MaxInt32
	}
	return int(s)
}
