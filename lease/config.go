package lease

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Manager. Zero values mean the documented defaults.
type Config struct {
	// Namespace is the key namespace: keys are p:NS:{lease}:...; default "v1".
	Namespace string
	// Owner identifies this instance; it must be unique within the group.
	// Default hostname-pid-random.
	Owner string
	// TTL is how long a lease and a membership heartbeat live without
	// renewal; default 10s.
	TTL time.Duration
	// Renew is the period of a round (renew, heartbeat, rebalance); default
	// TTL/3. It must be shorter than TTL.
	Renew time.Duration
	// ReleaseTimeout bounds how long a lease being given up waits for Done
	// before its key is deleted anyway (fencing then guards a worker that did
	// not stop); default TTL.
	ReleaseTimeout time.Duration
	// Sticky keeps a lease with its holder for as long as the holder
	// renews it, instead of handing it to whichever member's share it falls
	// in when members come and go; the split can then be uneven. For a
	// single lease whose handover costs more than it gains (the archive
	// role: one active archiver, the others standing by).
	Sticky bool
	// Now is the local clock that bounds how long a lease is trusted after
	// its last renew; nil means time.Now.
	Now func() time.Time
	// Logger receives acquisitions, releases, losses and errors; nil: no logs.
	Logger *slog.Logger
	// Registerer registers the pulse_lease_* metrics; nil: not registered.
	Registerer prometheus.Registerer
}

func (c Config) withDefaults() (Config, error) {
	if c.Namespace == "" {
		c.Namespace = "v1"
	}
	if c.Owner == "" {
		c.Owner = defaultOwner()
	}
	if c.TTL <= 0 {
		c.TTL = 10 * time.Second
	}
	if c.Renew <= 0 {
		c.Renew = c.TTL / 3
	}
	if c.Renew >= c.TTL {
		return c, fmt.Errorf("lease: renew period %v must be shorter than the TTL %v (default TTL/3)", c.Renew, c.TTL)
	}
	if c.TTL < 3*time.Millisecond {
		return c, fmt.Errorf("lease: TTL %v is below the 3ms Redis can express in milliseconds with a guard", c.TTL)
	}
	if c.ReleaseTimeout <= 0 {
		c.ReleaseTimeout = c.TTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "pulse"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
