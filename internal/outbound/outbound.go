// Package outbound holds the timeouts of Pulse's calls to other services
// (Redis, Kinesis, S3), so that no outbound call can hang a worker or a
// request forever when the other side stops answering.
package outbound

import (
	"net"
	"net/http"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/redis/go-redis/v9"
)

// Redis timeouts, applied where the URL does not set its own
// (dial_timeout, read_timeout, write_timeout, pool_timeout parameters).
// Blocking commands (XREAD BLOCK, pub/sub receives) extend the read
// timeout by their own block time in go-redis.
const (
	RedisDialTimeout  = 5 * time.Second
	RedisReadTimeout  = 5 * time.Second
	RedisWriteTimeout = 5 * time.Second
	RedisPoolTimeout  = 6 * time.Second // waiting for a free connection
)

// AWS HTTP timeouts. Total bounds one HTTP attempt, body included; the
// SDK retries on top, within the caller's context.
const (
	AWSDialTimeout           = 5 * time.Second
	AWSTLSHandshakeTimeout   = 10 * time.Second
	AWSResponseHeaderTimeout = 30 * time.Second
	KinesisTotalTimeout      = 60 * time.Second
	S3TotalTimeout           = 5 * time.Minute // archive objects are uploaded whole
)

// RedisOptions sets the timeouts of o that are zero and returns o.
func RedisOptions(o *redis.Options) *redis.Options {
	setTimeouts(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout)
	return o
}

// RedisClusterOptions sets the timeouts of o that are zero and returns o.
func RedisClusterOptions(o *redis.ClusterOptions) *redis.ClusterOptions {
	setTimeouts(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout)
	return o
}

func setTimeouts(dial, read, write, pool *time.Duration) {
	for _, x := range []struct {
		p *time.Duration
		d time.Duration
	}{{dial, RedisDialTimeout}, {read, RedisReadTimeout}, {write, RedisWriteTimeout}, {pool, RedisPoolTimeout}} {
		if *x.p == 0 {
			*x.p = x.d
		}
	}
}

// AWSHTTPClient returns the HTTP client of an AWS service client, with
// dial, TLS handshake and response header timeouts and total per
// attempt. The SDK's default client has no response or total timeout.
func AWSHTTPClient(total time.Duration) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithTimeout(total).
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = AWSDialTimeout }).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = AWSTLSHandshakeTimeout
			t.ResponseHeaderTimeout = AWSResponseHeaderTimeout
		})
}
