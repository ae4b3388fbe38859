package outbound

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisOptions(t *testing.T) {
	o, err := redis.ParseURL("redis://localhost:6379/0?read_timeout=9s")
	if err != nil {
		t.Fatal(err)
	}
	RedisOptions(o)
	if o.ReadTimeout != 9*time.Second {
		t.Errorf("read timeout %s: the URL's own setting must win", o.ReadTimeout)
	}
	if o.DialTimeout != RedisDialTimeout || o.WriteTimeout != RedisWriteTimeout || o.PoolTimeout != RedisPoolTimeout {
		t.Errorf("timeouts %s %s %s", o.DialTimeout, o.WriteTimeout, o.PoolTimeout)
	}
	c := RedisClusterOptions(&redis.ClusterOptions{})
	if c.DialTimeout != RedisDialTimeout || c.ReadTimeout != RedisReadTimeout {
		t.Errorf("cluster timeouts %s %s", c.DialTimeout, c.ReadTimeout)
	}
}

// TestRedisReadTimeout: a server that accepts and never answers fails a
// command with a timeout instead of hanging it.
func TestRedisReadTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent
		}
	}()
	o := RedisOptions(&redis.Options{Addr: ln.Addr().String(), ReadTimeout: 50 * time.Millisecond, MaxRetries: -1})
	rdb := redis.NewClient(o)
	defer rdb.Close()
	err = rdb.Ping(context.Background()).Err()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("ping a silent server: %v, want a timeout", err)
	}
}

// TestAWSHTTPClient: a server that never sends its response headers fails
// the request instead of hanging it.
func TestAWSHTTPClient(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	c := AWSHTTPClient(100 * time.Millisecond)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("request to a silent server succeeded")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
}
