package readiness

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// notReadyReplies are the Redis replies of a server that is up but not
// serving yet: a cluster still settling (CLUSTERDOWN, TRYAGAIN during a
// slot move), a dataset still loading from disk (LOADING), a replica
// whose master is away (MASTERDOWN).
var notReadyReplies = []string{"CLUSTERDOWN", "LOADING", "TRYAGAIN", "MASTERDOWN"}

// clusterNotFormed is go-redis's error when every node it asked answers
// CLUSTER SLOTS with no slots: the nodes run but have not been joined into
// a cluster yet. go-redis does not export it, so it is matched by text.
const clusterNotFormed = "redis: cluster has no nodes"

// Transient reports whether err says a dependency is not reachable or not
// ready yet, so trying again later may succeed: a refused or reset
// connection, a timeout, a connection closed mid-answer, a cluster whose
// nodes are not joined yet, or one of the Redis replies above. Anything else (a bad URL, a wrong password, a
// missing stream) is the operator's to fix, and retrying would only hide it.
func Transient(err error) bool {
	var ne net.Error
	switch {
	case err == nil:
		return false
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &ne),
		strings.Contains(err.Error(), clusterNotFormed):
		return true
	}
	// Redis replies are errors with a RedisError method (go-redis's
	// redis.Error); matching that method keeps this package free of a
	// client library.
	var re interface {
		error
		RedisError()
	}
	if errors.As(err, &re) {
		for _, p := range notReadyReplies {
			if strings.HasPrefix(re.Error(), p) {
				return true
			}
		}
	}
	return false
}
