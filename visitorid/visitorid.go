// Package visitorid makes the visitor id of an event sent without one
// (Plausible's trackers and server-side senders, a pixel, a script): a
// keyed hash of the site, the client address and the User-Agent under a
// random salt of the UTC day, as Plausible does. The same browser on the
// same network counts as one visitor of a site for the day, without a
// cookie; the next day it is another; and once the day's salt is gone (two
// days after it was made) nobody, the operator included, can compute an
// id from an address again, or tell which address an id was. Neither the
// address nor the User-Agent is stored.
//
// The salt of a day is made by the first ingest node that needs it (SET NX
// in Redis) and read by the others, so every node gives one visitor the
// same id; each node keeps the day's salt in memory. The embedded default
// keeps its salts in files of its data directory instead (DirSalts): its
// Redis starts empty at every start.
package visitorid

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/redisagg"
)

// SaltTTL is how long a day's salt is kept after it is made: the day, and
// a day more for nodes whose clocks lag.
const SaltTTL = 48 * time.Hour

// IDs derives visitor ids. Safe for concurrent use.
type IDs struct {
	salts Salts

	mu   sync.Mutex
	day  string // of salt
	salt []byte
}

// Salts keeps the salt of each day: the first fresh salt offered for a day
// is the day's, for every caller.
type Salts interface {
	Salt(ctx context.Context, day string, fresh []byte) ([]byte, error)
}

// New returns IDs whose salts live in rdb, shared by every ingest node.
func New(rdb redis.UniversalClient) *IDs { return &IDs{salts: RedisSalts{rdb}} }

// NewWith returns IDs whose salts live in salts.
func NewWith(salts Salts) *IDs { return &IDs{salts: salts} }

// ID is the visitor id of a request to site from client with userAgent,
// received at (UTC day of the salt): 32 hex digits. An invalid client
// address gives "": without it there is nothing to tell visitors apart.
func (x *IDs) ID(ctx context.Context, site string, client netip.Addr, userAgent string, at time.Time) (string, error) {
	if !client.IsValid() {
		return "", nil
	}
	salt, err := x.saltOf(ctx, at.UTC().Format(time.DateOnly))
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(site))
	m.Write([]byte{0})
	m.Write(client.Unmap().AsSlice())
	m.Write([]byte{0})
	m.Write([]byte(userAgent))
	return hex.EncodeToString(m.Sum(nil)[:16]), nil
}

// saltOf is the salt of day, from memory when it is the day held.
func (x *IDs) saltOf(ctx context.Context, day string) ([]byte, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.day == day {
		return x.salt, nil
	}
	salt, err := x.fetch(ctx, day)
	if err != nil {
		return nil, err
	}
	x.day, x.salt = day, salt
	return salt, nil
}

// fetch makes the salt of day unless it exists, and reads it.
func (x *IDs) fetch(ctx context.Context, day string) ([]byte, error) {
	fresh := make([]byte, saltBytes)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("make the visitor salt of %s: %w", day, err)
	}
	salt, err := x.salts.Salt(ctx, day, fresh)
	if err != nil {
		return nil, err
	}
	if len(salt) != saltBytes {
		return nil, fmt.Errorf("the visitor salt of %s is %d bytes, want %d", day, len(salt), saltBytes)
	}
	return salt, nil
}

const saltBytes = 32

// RedisSalts keeps salts in Redis (redisagg.Keys.VisitorSalt), for every
// node of a deployment: the first node to need a day's salt makes it (SET
// NX), the others read it. Each expires SaltTTL after it is made.
type RedisSalts struct{ RDB redis.UniversalClient }

// Salt is the salt of day.
func (r RedisSalts) Salt(ctx context.Context, day string, fresh []byte) ([]byte, error) {
	key := redisagg.Keys{}.VisitorSalt(day)
	if err := r.RDB.SetArgs(ctx, key, fresh, redis.SetArgs{Mode: "NX", TTL: SaltTTL}).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("make the visitor salt of %s: %w", day, err)
	}
	salt, err := r.RDB.Get(ctx, key).Bytes()
	if err != nil {
		return nil, fmt.Errorf("read the visitor salt of %s: %w", day, err)
	}
	return salt, nil
}

// DirSalts keeps salts in files of one directory (mode 0600), for the
// embedded default, whose Redis is rebuilt from the stream at every start
// and would lose them: a restart must not count a visitor of the day
// again. A file older than SaltTTL is removed when a new day's is made.
// One process uses the directory.
type DirSalts struct{ Dir string }

// Salt is the salt of day.
func (d DirSalts) Salt(_ context.Context, day string, fresh []byte) ([]byte, error) {
	path := filepath.Join(d.Dir, day)
	if salt, err := os.ReadFile(path); err == nil {
		return salt, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read the visitor salt of %s: %w", day, err)
	}
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("make the visitor salt of %s: %w", day, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, fresh, 0o600); err != nil {
		return nil, fmt.Errorf("make the visitor salt of %s: %w", day, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("make the visitor salt of %s: %w", day, err)
	}
	d.removeOld(time.Now().Add(-SaltTTL))
	return fresh, nil
}

// removeOld removes the salts made before cutoff: their days' ids can
// then no longer be computed.
func (d DirSalts) removeOld(cutoff time.Time) {
	entries, err := os.ReadDir(d.Dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.ModTime().Before(cutoff) {
			os.Remove(filepath.Join(d.Dir, e.Name()))
		}
	}
}
