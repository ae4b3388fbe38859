// Package aggregator folds the stream's shards into the aggregate store,
// exactly once: it reads each shard, drops duplicate events, buckets the
// rest by event time, combines a batch into one metric.Update and applies it
// atomically with the shard's position (metric.Commit).
//
// # Workers
//
// Run starts one worker per shard (new shards are found every
// DiscoverEvery; a child shard of a reshard starts once its parents ended).
// A worker loads its metric.Position from the store, rebuilds its dedup
// state, and then loops: read up to MaxBatch records after Position.Seq,
// fold them, apply one commit covering the first..last record folded (also
// when nothing in it counted: the position always advances). Reading and
// folding overlap the apply of the previous commit, and are pipelined: while
// an apply is in flight, further reads fold into the next commit, which is
// handed over as soon as the applier is idle, or once it holds MaxCommit
// records (default 50,000) or MaxCommitBytes of record data (64 MiB), or when
// the worker caught up with the stream (the read reports nothing behind it,
// or, when the stream cannot tell, returned fewer records than asked). Store work
// grows with a commit's distinct keys, not its records, so under load
// commits grow and cost less per event. A worker that catches up within
// MinCommitInterval (default 50ms) of its last commit with new records
// reads on until that interval has passed (a read that brings nothing, or
// the interval's end, stops it), so a steady load makes one commit per
// interval rather than one per read; after a quiet spell a read is
// applied at once. On any read or apply error the worker logs,
// counts, backs off (50ms doubling to 5s) and restarts from the store's
// position, discarding its memory: the store is the truth, since an apply
// whose reply was lost may have landed.
//
// # Deduplication
//
// A retry of an event carries the same site and id, and lands on the same
// shard. The dedup key is MurmurHash3 x64_128 of site+"\x00"+id (fixed, not
// per-process seeded). The window (DedupWindow, default 10m) is cut into 10
// generations; the dedup clock is the highest receive time (RT, stamped by
// ingest) seen so far, never the wall clock. For each record the
// generations older than clock/width-9 are dropped, the event is a
// duplicate when its key is live, and the key is always (re)inserted in the
// current generation, so a key lives until a window after its last
// sighting. Because decisions are a pure function of the record sequence,
// Position.DedupFrom (first record of the oldest live generation) and
// Position.DedupClock (the clock just before it) are enough to rebuild the
// exact state after a crash: the worker re-reads DedupFrom..Seq without
// applying. TestDedupRebuildIsExact checks every decision against an
// uninterrupted run under random batch splits and crashes. The re-read
// starts at DedupFrom itself: a Source with ReadFrom (Kinesis, whose
// sequence numbers have gaps) reads from it inclusive, others read after
// the number before it. A child shard of a reshard inherits its parents'
// final states (rebuilt from their stored positions at each session start,
// consulted read-only while a record's RT is within a window of the
// parent's clock), so a retry landing in the child after its original
// landed in a parent is a duplicate. Each parent's state carries its own
// parents' in turn, so two reshards within one window forget nothing.
//
// # Groups
//
// RunLeased works only the shards a lease manager (package lease) holds,
// one worker per lease, each commit carrying the lease's fence; Workable is
// the shard list the manager splits: shards not yet applied to their end
// whose parents were, as recorded in the store (End/Ended), so a child
// starts after its parents whoever applied them. A worker stops when its
// lease goes or the store refuses it as fenced, and then tells the manager
// (Done). On Redis Cluster an interrupted commit may be applied to some
// sites only: a resuming worker ends its first commit at the store's
// pending end, and cuts its commits at any site boundary an ErrOverlap
// names, so every site part is applied whole or skipped whole.
//
// Memory: the state is one flat open-addressing table of 16-byte keys and
// a one-byte generation tag per slot, kept 60% to 80% full: BenchmarkDedup
// measures about 27 bytes per live key (78 with the earlier Go map and
// per-generation key lists). A rebuild (on growth, or to clear keys of
// dropped generations) briefly holds the old and the new table. At 10,000
// distinct events/s per shard the default 10m window holds up to 6,000,000
// keys: about 165 MB per shard (peak about twice that during a rebuild). A
// restart re-reads up to one window of records (6M at that rate) to
// rebuild it.
//
// # Event time
//
// Decisions use the event's receive time RT, not the wall clock, so a replay
// gives the same result:
//
//   - ts > RT + MaxFuture (default 5m): ts := RT; counted as
//     pulse_aggregator_events_total{outcome="future_clamped"}.
//   - RT - ts > AllowedLateness (default 24h): not aggregated;
//     {outcome="too_late"}.
//   - otherwise the event counts in every step whose retention still holds
//     its bucket (step.ExpireAt(bucket) > RT); for the other steps it is
//     skipped and counted in pulse_aggregator_step_skipped_total{step}.
//     Outcome "applied".
//
// Duplicates count as {outcome="duplicate"}, records that do not decode as
// {outcome="undecodable"}; every record has exactly one outcome.
//
// # Combining
//
// For each metric.Def: bot events count only in BotsOnly metrics and
// BotsOnly metrics take only bots; Types filters by type. A count metric
// adds 1 to its total (CountKey.Dim "") in each step and 1 to each
// dimension's value: type, path, referrer (ref host), device, or else the
// prop of that name as a string (numbers without trailing zeros, true /
// false); missing or empty is metric.None; longer than metric.MaxValueBytes
// (256) is cut by metric.CutValue, here and so in replay too, ending in
// metric.CutMark ("…"). A unique metric adds its Field
// ("uid", or a prop) to the step's HyperLogLog, unless empty. Counters are
// first combined per base bucket (the gcd of the step widths) and spread
// over the steps once per batch, so store work grows with distinct keys.
//
// # Metrics
//
// pulse_aggregator_events_total{outcome}, pulse_aggregator_step_skipped_total{step},
// pulse_aggregator_apply_seconds, pulse_aggregator_batch_records,
// pulse_aggregator_lag_records{shard}, pulse_aggregator_lag_millis{shard},
// pulse_aggregator_errors_total{op} (read, apply, position, shards, trimmed),
// pulse_aggregator_dedup_entries{shard}.
package aggregator
