// Package archiver is the archive role of pulse serve: it reads every shard
// of the stream and writes its raw events to the archive (package archive)
// exactly once, across crashes, restarts and reshards.
//
// One worker per shard reads from the shard's checkpoint and adds records to
// an archive.Writer. The checkpoint {Durable, FlushAt} follows the protocol
// of the archive package doc: before a flush (MaxAge reached, the shard's
// buffer full, the shard ended, or the archiver stopping) the worker saves
// FlushAt = the last record added, then flushes, then saves Durable =
// FlushAt. A restart reads again from Durable and, when FlushAt is set,
// flushes exactly after that record, so the objects it writes are the ones
// the crashed run wrote or would have written: existing ones come back
// created=false, and no record is missing or archived twice. Any error
// (stream, store, checkpoint) drops the shard's buffered records and restarts
// the shard from its checkpoint after a backoff.
//
// Run archives alone. With a shared Redis, the archive role of a group of
// instances is one active archiver and hot standbys: each runs RunLeased
// with a lease.Manager over the one lease Workable lists, the holder
// archives every shard, fenced through RedisCheckpoints.Claim, and another
// instance takes over within the lease TTL when it dies. Changing
// archive.WriterConfig.MaxBytes or MaxPendingBytes between runs is safe only
// while no checkpoint holds a FlushAt (a clean stop leaves none); otherwise
// the rebuild may cut differently and an object may overlap one written
// before the change.
package archiver
