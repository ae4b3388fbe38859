// Package replay rebuilds aggregates from the raw-event archive and the
// stream, with the same aggregator code that runs live (the Kappa
// architecture's reprocessing); verify audits live aggregates against such
// a recomputation, built here and compared by redisagg.Compare.
//
// # The chained source
//
// Source is an aggregator.Source whose every shard is the archive objects
// of that shard (in sequence order, merged across the hour partitions that
// the archiver split them into), then the stream after the archiver's
// durable checkpoint of the shard: the part not archived yet. The
// checkpoints are loaded before the archive is listed, so the listing
// holds every object through them even while the archiver flushes. Sequence
// numbers are the stream's own (the archive keeps them), so the positions a
// replay leaves in its namespace are stream positions, and the live
// aggregator can continue from them after a promote (the hand-off).
//
// Objects of one shard overlap in sequence ranges only within one flush of
// the archiver (a flush cuts every open object of the shard at once), so
// the source merges the objects of one such group at a time, each read
// through a pull iterator: memory is one decoded row batch per object of
// the group plus, from S3, the group's object bodies.
//
// A time range keeps the events whose ts (as ingested) lies in it: only
// the partitions of the range are read from the archive; from the stream,
// records outside the range are handed to the aggregator as empty records,
// which it counts as undecodable and skips, so positions still advance.
//
// # Building
//
// Build runs an aggregator.Aggregator over a Source into a namespace's
// store until every shard has caught up with the stream (or with a cap
// given per shard, for verify) and its position in the store has reached
// what the source served. Progress (events, archive bytes, phase) is read
// from the Source while it runs. Positions are in the namespace, so a Build
// interrupted at any point continues where it stopped when run again.
package replay
