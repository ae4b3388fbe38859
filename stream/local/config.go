package local

import (
	"log/slog"
	"time"
)

// Config configures a Log. Zero values mean the documented defaults.
type Config struct {
	// Shards is the number of shards, default 4 when the directory is made.
	// It is recorded in the directory: reopening with another non-zero count
	// is an error naming both, and zero means "whatever is recorded".
	Shards int
	// SegmentBytes is the size past which the active segment is sealed and a
	// new one started, default 64 MiB.
	SegmentBytes int64
	// RetentionAge: sealed segments whose newest record is older are
	// deleted, default 7 days.
	RetentionAge time.Duration
	// RetentionBytes caps the size of all shards together, default 10 GiB;
	// the oldest sealed segments are deleted first, never an active one.
	RetentionBytes int64
	// ReadWait is how long Read waits for new records before returning an
	// empty batch, default 200ms.
	ReadWait time.Duration
	// RetentionEvery is how often Run enforces retention, default 30s.
	RetentionEvery time.Duration
	// QueueDepth bounds the Puts waiting for the writer, default 1024; a
	// Put blocks on a full queue, honoring its context.
	QueueDepth int
	// JournalBytes is the size of a journal file, default 64 MiB, at least
	// 8 MiB. When one is full the writer goes on in the other while the
	// segments are fdatasync'd in the background: a larger one syncs the
	// segments less often, and leaves more to put back after a crash.
	JournalBytes int64
	// Now gives arrival times and retention ages; nil means time.Now.
	Now func() time.Time
	// Logger gets recovery and retention events; nil means don't log.
	Logger *slog.Logger
}

const (
	defaultShards         = 4
	defaultSegmentBytes   = 64 << 20
	defaultRetentionAge   = 7 * 24 * time.Hour
	defaultRetentionBytes = 10 << 30
	defaultReadWait       = 200 * time.Millisecond
	defaultRetentionEvery = 30 * time.Second
	defaultQueueDepth     = 1024
	defaultJournalBytes   = 64 << 20
	maxShards             = 1 << 16
)

func (c Config) withDefaults() Config {
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = defaultSegmentBytes
	}
	if c.RetentionAge <= 0 {
		c.RetentionAge = defaultRetentionAge
	}
	if c.RetentionBytes <= 0 {
		c.RetentionBytes = defaultRetentionBytes
	}
	if c.ReadWait <= 0 {
		c.ReadWait = defaultReadWait
	}
	if c.RetentionEvery <= 0 {
		c.RetentionEvery = defaultRetentionEvery
	}
	if c.QueueDepth <= 0 {
		c.QueueDepth = defaultQueueDepth
	}
	if c.JournalBytes <= 0 {
		c.JournalBytes = defaultJournalBytes
	}
	c.JournalBytes = max(c.JournalBytes, minJournalBytes)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
