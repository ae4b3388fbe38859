// Package local is the embedded durable stream of `pulse serve`: a sharded,
// append-only log under a data directory, with the same shape as Kinesis
// Data Streams (shards, per-shard sequence numbers, partition keys hashed
// with MD5 over even hash ranges) so the aggregator and the archiver read
// both through one interface.
//
// # Layout on disk
//
//	DIR/meta.json                 {"version":2,"shards":N}, written at creation
//	DIR/LOCK                      flock'd while a Log has the directory open
//	DIR/journal-GEN.wal           the journal of all shards, two files at most (journal.go)
//	DIR/shard-000000/             one directory per shard
//	    00000000000000000001.seg  segment files, named by the first sequence
//	    00000000000000004711.seg  number they hold (or will hold), 20 digits
//
// Sequence numbers are per shard, uint64 from 1, written as decimal strings
// without leading zeros (compare them with stream.CompareSeq). They never go
// back: across restarts the next one follows the tip, and when retention has
// deleted every record the name of the (empty) active segment still says
// which number comes next.
//
// A segment is a plain concatenation of records; the last segment of a shard
// is the active one, the only one written to. A record is, little endian:
//
//	length   uint32  bytes after the checksum: 18 + len(key) + len(data)
//	checksum uint32  CRC-32C (Castagnoli) of those bytes
//	seq      uint64  sequence number
//	arrival  int64   when the log accepted the record, Unix milliseconds
//	keylen   uint16  length of the partition key (at most 256)
//	key      keylen bytes
//	data     the rest (at most 1 MiB)
//
// A record whose length field is out of bounds, whose checksum does not match
// or whose sequence number is not the one that must come next is corrupt.
//
// # Durability
//
// Put returns only after every entry it was given is durable. One writer
// goroutine serves all shards: it takes every Put waiting (group commit,
// without any added delay), appends their records to one journal file as
// one frame and writes the same bytes to each shard's active segment; a
// syncer goroutine then makes everything written so far durable with a
// single fdatasync of the journal and wakes every caller. The writer goes
// on with the next Puts while the syncer waits for the disk, so writing
// one group overlaps with the fdatasync of the one before; only a small
// group waits for that fdatasync to end, to be written together with the
// Puts that come meanwhile (the next fdatasync covers them all anyway). The segments are fdatasync'd only when a journal file
// is full (in the background, while the writer goes on in the other
// journal file), when a segment is sealed, and on Close. So one commit costs one fdatasync
// however many shards it touched, and since the journal is written over
// blocks that already exist (extended with zeros ahead, later reused),
// that fdatasync writes data only, never a size change that would cost a
// file system journal commit. Records become visible to Read only once
// they are durable.
//
// On Open, the active segment of every shard is scanned and cut at its
// first record that is incomplete or corrupt (a torn write, or a page the
// kernel had not yet written back), then the journal is read and every
// record it holds past a shard's tip is put back into the segment, which
// is then fdatasync'd. The journal holds every record that is not yet
// durable in its segment, and an ack follows the journal's fdatasync, so
// nothing acknowledged is lost. A journal record that would leave a gap
// after a shard's tip fails Open with ErrCorrupt. Sealed segments (every
// segment but the last) were fdatasync'd before the next one was made, so
// damage inside one is not a torn tail: it is never skipped silently nor
// cut. Open still succeeds, the records before the damage stay readable,
// and a Read that reaches the damaged record returns an error wrapping
// ErrCorrupt. Checksums are checked again on every read.
//
// A directory of meta version 1 (from before the journal: every segment
// fsync'd on each commit) is read as it is and marked version 2, so that
// a build that does not know the journal refuses it rather than miss
// records only the journal holds.
//
// When a write or an fsync fails, the log refuses further Puts (what is in
// the page cache can no longer be trusted to reach the disk); reopening the
// Log recovers it. A Put that returns an error may still have stored some of
// its entries: callers retry, and duplicates carry the event id that the
// aggregator deduplicates on.
//
// # Reading
//
// Each segment keeps a sparse in-memory index (sequence number to file
// offset, one entry per 8 KiB), rebuilt by Open from a scan of every
// segment, so a Read seeks with one binary search and reads with ReadAt
// into a buffer that the returned records' Data point into. Readers take
// a shard's lock only to copy a few fields, never across I/O, so they never
// hold up the writer, and any number of them may read a shard at once.
// Open's scan reads the whole log once: its time grows with the retained
// size (about a second per GiB, at the speed CRC-32C and the disk allow).
//
// # Retention
//
// Run deletes whole sealed segments, oldest first: those whose newest record
// is older than RetentionAge, then, while all shards together hold more than
// RetentionBytes, the oldest sealed segment of any shard. The active segment
// of a shard is never deleted. A reader whose position was deleted is moved
// to the oldest retained record and told so with Batch.Trimmed.
package local
