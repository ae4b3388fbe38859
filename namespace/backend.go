package namespace

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/redis/go-redis/v9"

	"github.com/pulsehq/pulse/redisagg"
)

// RedisBackend keeps the registry in one Redis string, at
// redisagg.Keys.Registry: outside every namespace's own keys, so dropping
// a namespace never touches it.
type RedisBackend struct {
	rdb redis.UniversalClient
	key string
}

// NewRedisBackend returns a backend on rdb.
func NewRedisBackend(rdb redis.UniversalClient) *RedisBackend {
	return &RedisBackend{rdb: rdb, key: redisagg.Keys{}.Registry()}
}

// Load implements Backend.
func (b *RedisBackend) Load(ctx context.Context) ([]byte, error) {
	v, err := b.rdb.Get(ctx, b.key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", b.key, err)
	}
	return v, nil
}

// Save implements Backend: one SET, atomic for readers.
func (b *RedisBackend) Save(ctx context.Context, doc []byte) error {
	if err := b.rdb.Set(ctx, b.key, doc, 0).Err(); err != nil {
		return fmt.Errorf("set %s: %w", b.key, err)
	}
	return nil
}

// casScript sets KEYS[1] to ARGV[2] if it still holds ARGV[1] (an empty
// ARGV[1] meaning "absent"), atomically.
var casScript = redis.NewScript(`
local cur = redis.call("GET", KEYS[1])
if (cur == false and ARGV[1] == "") or cur == ARGV[1] then
  redis.call("SET", KEYS[1], ARGV[2])
  return 1
end
return 0`)

// CompareAndSwap implements Swapper: one script, atomic.
func (b *RedisBackend) CompareAndSwap(ctx context.Context, old, doc []byte) (bool, error) {
	n, err := casScript.Run(ctx, b.rdb, []string{b.key}, old, doc).Int()
	if err != nil {
		return false, fmt.Errorf("compare and set %s: %w", b.key, err)
	}
	return n == 1, nil
}

// FileBackend keeps the registry in a file, replaced atomically (write to
// a temporary file, fsync, rename, fsync the directory), so a crash leaves
// the old or the new registry, never a torn one.
type FileBackend struct{ path string }

// NewFileBackend returns a backend on the file at path.
func NewFileBackend(path string) *FileBackend { return &FileBackend{path: path} }

// Load implements Backend.
func (b *FileBackend) Load(ctx context.Context) ([]byte, error) {
	v, err := os.ReadFile(b.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", b.path, err)
	}
	return v, nil
}

// Save implements Backend.
func (b *FileBackend) Save(ctx context.Context, doc []byte) error {
	dir := filepath.Dir(b.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save %s: %w", b.path, err)
	}
	f, err := os.CreateTemp(dir, ".namespaces-")
	if err != nil {
		return fmt.Errorf("save %s: %w", b.path, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(doc); err != nil {
		f.Close()
		return fmt.Errorf("save %s: write: %w", b.path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save %s: fsync: %w", b.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save %s: close: %w", b.path, err)
	}
	if err := os.Rename(f.Name(), b.path); err != nil {
		return fmt.Errorf("save %s: rename: %w", b.path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save %s: open dir: %w", b.path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("save %s: fsync dir: %w", b.path, err)
	}
	return nil
}
