package archiver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// FileCheckpoints keeps the checkpoints in a directory, one file per shard
// (SHARD.json, same JSON as RedisCheckpoints), each replaced atomically
// (write, fsync, rename, fsync the directory). It is for the embedded mode,
// whose Redis lives in memory: a checkpoint lost at restart would make the
// archiver start over and cut differently from the objects already written.
// Safe for concurrent use across shards; one writer per shard.
type FileCheckpoints struct {
	dir string
}

// NewFileCheckpoints keeps checkpoints under dir, made on the first Save.
func NewFileCheckpoints(dir string) *FileCheckpoints {
	return &FileCheckpoints{dir: filepath.Clean(dir)}
}

func (f *FileCheckpoints) path(shard string) (string, error) {
	if shard == "" || len(shard) > 128 || shard[0] == '.' {
		return "", fmt.Errorf("archive checkpoint: bad shard id %q", shard)
	}
	for i := 0; i < len(shard); i++ {
		c := shard[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", fmt.Errorf("archive checkpoint: bad shard id %q: want [A-Za-z0-9_.-]", shard)
		}
	}
	return filepath.Join(f.dir, shard+".json"), nil
}

// Load returns the checkpoint of shard, zero when none was saved.
func (f *FileCheckpoints) Load(ctx context.Context, shard string) (Checkpoint, error) {
	p, err := f.path(shard)
	if err != nil {
		return Checkpoint{}, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return Checkpoint{}, nil
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("load archive checkpoint of shard %s: %w", shard, err)
	}
	c, err := decodeCheckpoint(b)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("load archive checkpoint of shard %s from %s: %w", shard, p, err)
	}
	return c, nil
}

// Save replaces the checkpoint of shard durably.
func (f *FileCheckpoints) Save(ctx context.Context, shard string, c Checkpoint) error {
	p, err := f.path(shard)
	if err != nil {
		return err
	}
	if err := f.save(p, encodeCheckpoint(c)); err != nil {
		return fmt.Errorf("save archive checkpoint of shard %s: %w", shard, err)
	}
	return nil
}

func (f *FileCheckpoints) save(p string, b []byte) error {
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(f.dir, ".ck-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename: a no-op
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return err
	}
	d, err := os.Open(f.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
