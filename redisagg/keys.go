package redisagg

import (
	"strconv"
	"strings"
)

// Field names inside a count hash. Dimension value fields are
// dim + fieldSep + value; the total and the distinct-count fields contain no
// fieldSep, so they never collide with a value field.
const (
	fieldTotal   = "_"
	fieldSep     = "\x1f"
	distinctMark = "#" // "#path" holds how many distinct path values the bucket has
)

// Kinds of bucket key, the letter after the site tag.
const (
	kindCount   = "c"
	kindTop     = "t"
	kindUnique  = "u"
	kindSamples = "n" // avg metrics: the events behind each sum of the count hash
)

// Keys builds every Redis key and channel name Pulse uses in one namespace
// (docs/redis-keys.md): the aggregates, checkpoints and delta log of the
// Store, the shard positions, the leases, the archive checkpoints and the
// namespace registry. It is the only code that spells the layout; every
// other package asks it for a key.
type Keys struct{ ns string }

// KeysFor returns the keys of namespace ns, used as given (Config's default
// "v1" is the Store's business). An empty ns is meaningful only for
// ArchiveCheckpoint, which then names the deployment-wide hash.
func KeysFor(ns string) Keys { return Keys{ns: ns} }

// tagged is "p:NS:{TAG}:". The namespace comes before any hash tag, so one
// SCAN MATCH p:NS:* finds the whole namespace; Redis Cluster hashes only
// TAG, so every key with one tag lives in one slot and one script may touch
// them all. Each key is one concatenation: Apply builds thousands a commit.
func (k Keys) tagged(tag string) string { return "p:" + k.ns + ":{" + tag + "}:" }

func (k Keys) bucket(site, kind, m, step string, bucket int64) string {
	return "p:" + k.ns + ":{" + site + "}:" + kind + ":" + m + ":" + step + ":" + strconv.FormatInt(bucket, 10)
}

func (k Keys) count(site, m, step string, bucket int64) string {
	return k.bucket(site, kindCount, m, step, bucket)
}

// samples is the hash of an avg metric's divisors: its fields are those of
// the count hash holding the sums, each the number of events added there.
func (k Keys) samples(site, m, step string, bucket int64) string {
	return k.bucket(site, kindSamples, m, step, bucket)
}

func (k Keys) top(site, m, dim, step string, bucket int64) string {
	return "p:" + k.ns + ":{" + site + "}:" + kindTop + ":" + m + ":" + dim + ":" +
		step + ":" + strconv.FormatInt(bucket, 10)
}

func (k Keys) unique(site, m, step string, bucket int64) string {
	return k.bucket(site, kindUnique, m, step, bucket)
}

// checkpoint is a site's hash of shard -> last applied sequence number, in
// the site's slot so the apply script writes it with the site's counters.
func (k Keys) checkpoint(site string) string { return "p:" + k.ns + ":{" + site + "}:ck" }

// scratch is where the read script sums a range's top-K sets, deleted in
// the same script: in the site's slot, so one script reads and writes it.
func (k Keys) scratch(site string) string { return "p:" + k.ns + ":{" + site + "}:scratch" }

func (k Keys) deltaSeq(site, m string) string { return "p:" + k.ns + ":{" + site + "}:dseq:" + m }

// rows is the first segment of the Stats API's fact rows of a site's
// hour (package factrow), hour being its start in ms: the hour's rows are
// one logical string kept in segments of rowSegment bytes (rows.go).
func (k Keys) rows(site string, hour int64) string {
	return "p:" + k.ns + ":{" + site + "}:rows:" + strconv.FormatInt(hour, 10)
}

// rowSegment is segment i of the rows of a site's hour; segment 0 is
// rows. apply.lua builds the same names from rows.
func (k Keys) rowSegment(site string, hour int64, i int64) string {
	if i == 0 {
		return k.rows(site, hour)
	}
	return k.rows(site, hour) + ":" + strconv.FormatInt(i, 10)
}

// rowsLen holds the logical length of the rows of a site's hour; none
// when its rows predate segments and are one string of any length.
func (k Keys) rowsLen(site string, hour int64) string { return k.rows(site, hour) + ":len" }

// RowChannel is the pub/sub channel on which each apply that appended fact
// rows of a site tells which hours grew: "HOUR:LENGTH,..." (hour start in
// ms, the string's new length in bytes).
func (k Keys) RowChannel(site string) string { return "p:" + k.ns + ":{" + site + "}:rowsig" }

// position is a shard's position, tagged with the shard: written after the
// site parts, in a slot of its own.
func (k Keys) position(shard string) string { return "p:" + k.ns + ":{" + shard + "}:pos" }

// DeltaLog is the stream holding the recent deltas of a site's metric:
// entries with id "N-0" and one field "d" holding the JSON push.Delta.
func (k Keys) DeltaLog(site, m string) string { return "p:" + k.ns + ":{" + site + "}:dlog:" + m }

// DeltaChannel is the pub/sub channel each delta of a site's metric is
// published on, with the same JSON as the delta log entry.
func (k Keys) DeltaChannel(site, m string) string {
	return "p:" + k.ns + ":{" + site + "}:deltas:" + m
}

// LeaseMembers is the sorted set of the lease group's live members
// (owner -> expiry). Every lease key has the tag {lease}, so each lease
// script runs in one slot.
func (k Keys) LeaseMembers() string { return k.tagged("lease") + "members" }

// LeaseFence is the hash of shard -> last fence handed out.
func (k Keys) LeaseFence() string { return k.tagged("lease") + "fence" }

// LeaseShard is the hash holding the lease of one shard.
func (k Keys) LeaseShard(shard string) string { return k.tagged("lease") + "shard:" + shard }

// ArchiveCheckpoint is the archiver's hash of shard -> checkpoint. The
// archive is of raw events, not of an aggregate namespace, so the key is
// p:{archive}:ck for the empty namespace and p:NS:{archive}:ck only for
// deployments that share a Redis and each keep their own archive.
func (k Keys) ArchiveCheckpoint() string {
	if k.ns == "" {
		return "p:{archive}:ck"
	}
	return k.tagged("archive") + "ck"
}

// ArchiveFence holds the highest fence that claimed the archive checkpoints,
// in the same {archive} slot, so one script reads both.
func (k Keys) ArchiveFence() string { return k.ArchiveCheckpoint() + ":fence" }

// Registry is the namespace registry. It is the same for every Keys: it
// lies outside every namespace (p:{ns}:, not p:NS:), so dropping a
// namespace never touches it.
func (Keys) Registry() string { return "p:{ns}:registry" }

// VisitorSalt is the random salt of one UTC day (YYYY-MM-DD) from which
// ingest derives the visitor ids of events sent without one (package
// visitorid), shared by every ingest node. Like Sites it lies outside
// every namespace; it expires two days after it is made, so an old day's
// ids can no longer be recomputed.
func (Keys) VisitorSalt(day string) string { return "p:{salt}:" + day }

// Sites is the set of sites added at run time (by an admin, or by traffic
// when any site is accepted), shared by every node of a deployment. Like
// Registry it lies outside every namespace: sites outlive namespaces.
func (Keys) Sites() string { return "p:{sites}:known" }

// pattern is the SCAN MATCH pattern of every key of the namespace. The ':'
// after the name keeps v2's pattern from matching the keys of v20.
func (k Keys) pattern() string { return "p:" + globEscape(k.ns) + ":*" }

// SitePattern is the SCAN MATCH pattern of every key of one site in the
// namespace: its buckets, top-K sets, HLLs, checkpoint and delta logs.
// Tests and tools use it to inspect what a site costs.
func (k Keys) SitePattern(site string) string {
	return "p:" + globEscape(k.ns) + ":{" + globEscape(site) + "}:*"
}

// bucketPattern matches every bucket key of one kind in the namespace.
func (k Keys) bucketPattern(kind string) string {
	return "p:" + globEscape(k.ns) + ":{*}:" + kind + ":*"
}

// parseBucket splits a key p:NS:{SITE}:KIND:METRIC:STEP:BUCKET of this
// namespace, as SCAN returns them; ok is false for any other key.
func (k Keys) parseBucket(key, kind string) (site, m, step string, bucket int64, ok bool) {
	rest, found := strings.CutPrefix(key, "p:"+k.ns+":{")
	if !found {
		return
	}
	site, rest, found = strings.Cut(rest, "}:"+kind+":")
	if !found {
		return
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return
	}
	b, err := strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil {
		return
	}
	rest = rest[:i]
	j := strings.LastIndexByte(rest, ':')
	if j < 0 {
		return
	}
	return site, rest[:j], rest[j+1:], b, true
}

// globEscape quotes the characters SCAN MATCH treats as a pattern, so a
// namespace name matches only itself.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
