// Package archive writes every accepted raw event to object storage (S3, or
// a local directory with the same layout) and reads it back, so analysts can
// query the raw events with Athena, DuckDB, Spark or Trino, and so any
// aggregate can be rebuilt by replaying them (the Kappa architecture).
//
// # Layout
//
//	PREFIX/dt=YYYY-MM-DD/hr=HH/SHARD-FIRSTSEQ-LASTSEQ.parquet
//
// Partitions are Hive-style by receive time (UTC hour of rt, stamped at
// ingest), not by the ts a client sends: a client cannot choose where, or
// into how many objects, its events go, so the objects one flush writes
// depend on how long its records took to arrive (one or two hours at the
// default MaxAge), never on ts. Every event is kept, whatever its ts; the
// ts column holds it as sent. A query or a replay of an event-time range
// lists the receive hours that can hold it, event.TimeRule.ReceivedWithin:
// from MaxFuture before the range to AllowedLateness after it, and keeps
// the rows by ts. Objects written before this layout (partitioned by the
// hour of ts) have the same key format and are read the same way: their
// events of a range lie inside that widened listing. Seqs are zero-padded
// to SeqWidth (62) digits, the longest position stream/kinesis gives, so an
// object name sorts with its records. An object holds the records of one
// shard and one receive hour, in seq order; its name is a pure function of
// (hour, shard, first seq, last seq).
//
// # Format
//
// Objects are Parquet (one row group, Zstd pages of 64 KiB): columnar and
// typed, it is what Athena, DuckDB, Spark and Trino read natively, queries
// read only the columns they use and skip row groups by min/max statistics,
// and event data compresses 5-10x better than NDJSON (see BenchmarkWrite).
// The writer encodes each record into its object's pages as it is added, so
// a shard's buffered records cost their encoded size, not decoded events. Columns: id,
// site, type, ts and rt (TIMESTAMP millis, UTC), url, ref, uid, path,
// ref_host, device (NULL when empty), bot, props (the props map as a JSON
// string, NULL when empty), shard, seq (decimal string: Kinesis seqs exceed
// 64 bits), and the visit fields ingest derives (event.Visit: source,
// utm_source, utm_medium, utm_campaign, utm_content, utm_term, browser,
// browser_version, os, os_version, country; NULL when empty, and in
// objects written before them). The footer carries pulse.shard, pulse.first_seq, pulse.last_seq
// and pulse.records; on S3 the object metadata carries records, first-seq
// and last-seq too.
//
// # Exactly once, across crashes
//
// Objects are written with a conditional put (S3 If-None-Match: *; link(2)
// on disk), so writing an existing key is a no-op. The archiver gets no gap
// and no overlap after a crash if a rebuild from its checkpoint produces the
// same objects: the same records cut at the same places. The cut rule is:
//
//   - Add cuts an object when its records reach WriterConfig.MaxBytes raw
//     bytes. This depends only on the records added since the last Flush.
//   - Flush cuts every open object of the shard. When to flush depends on
//     time (Due, MaxAge) and so is not reproducible by itself; the archiver
//     makes it so by recording the boundary before flushing.
//
// The archiver keeps, per shard, a checkpoint {durable, flushAt}:
//
//  1. Read records after durable and Add them. When Due names the shard, or
//     Add returns ErrFull, or the archiver stops: set flushAt = Last(shard)
//     and persist the checkpoint. Add no further record of the shard.
//  2. Call Flush until it succeeds; it returns flushAt. Persist
//     {durable: flushAt, flushAt: ""}.
//
// On restart it reads from durable and Adds records; if flushAt is set, it
// calls Flush right after adding the record flushAt, before any later one.
// Between two checkpoints the writer starts empty, the same records arrive in
// the same order, and the cuts (by bytes, and at flushAt) fall at the same
// records, so every object gets the name and content it had before: those
// already written are skipped (created=false), the rest are written. A crash
// before flushAt was persisted loses nothing: that flush never wrote an
// object, and the next run picks its own boundary.
//
// The archive holds events as accepted, including client retries with the
// same id; a replay deduplicates them as the aggregator does.
package archive
