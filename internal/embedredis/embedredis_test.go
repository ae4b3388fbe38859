package embedredis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestKeysExpireOnTheWallClock: a key with a TTL outlives its TTL while
// Run is not running (miniredis moves no clock by itself) and is gone
// within Run's one-second sweep once it runs.
func TestKeysExpireOnTheWallClock(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.Password()})
	defer c.Close()
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 200*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("without Run, the key expired early: %q %v", v, err)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	deadline := time.Now().Add(3 * time.Second)
	for {
		err := c.Get(ctx, "k").Err()
		if errors.Is(err, redis.Nil) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the key did not expire with Run running")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after ctx ended, want nil", err)
	}
}

// TestPasswordRequired: a client without the password, or with a wrong
// one, can neither read, write nor publish; the password differs at each
// start and is long enough not to be guessed.
func TestPasswordRequired(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	owner := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.Password()})
	defer owner.Close()
	if err := owner.Set(ctx, "secret", "v", 0).Err(); err != nil {
		t.Fatalf("the owner cannot write: %v", err)
	}
	for _, pw := range []string{"", "wrong-password-of-some-length"} {
		c := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: pw, MaxRetries: -1})
		for name, err := range map[string]error{
			"GET":     c.Get(ctx, "secret").Err(),
			"SET":     c.Set(ctx, "secret", "forged", 0).Err(),
			"PUBLISH": c.Publish(ctx, "ch", "forged").Err(),
			"KEYS":    c.Keys(ctx, "*").Err(),
		} {
			if err == nil || !strings.Contains(strings.ToUpper(err.Error()), "AUTH") && !strings.Contains(err.Error(), "WRONGPASS") {
				t.Errorf("password %q: %s = %v, want an auth error", pw, name, err)
			}
		}
		c.Close()
	}
	if v, err := owner.Get(ctx, "secret").Result(); err != nil || v != "v" {
		t.Errorf("after the attempts, secret = %q %v, want v", v, err)
	}

	s2, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if len(s.Password()) < 32 || s.Password() == s2.Password() {
		t.Errorf("passwords %q and %q: want 32+ characters, fresh at each start", s.Password(), s2.Password())
	}
}
