package redisagg

import "strconv"

// Field names inside a count hash. Dimension value fields are
// dim + fieldSep + value; the total and the distinct-count fields contain no
// fieldSep, so they never collide with a value field.
const (
	fieldTotal   = "_"
	fieldSep     = "\x1f"
	distinctMark = "#" // "#path" holds how many distinct path values the bucket has
)

// sitePrefix is "p:NS:{SITE}:": the hash tag puts every key of a site in one
// Redis Cluster slot, so a site's part of a commit is one atomic script.
func (s *Store) sitePrefix(site string) string {
	return "p:" + s.cfg.Namespace + ":{" + site + "}:"
}

func (s *Store) countKey(site, m, step string, bucket int64) string {
	return s.sitePrefix(site) + "c:" + m + ":" + step + ":" + strconv.FormatInt(bucket, 10)
}

func (s *Store) topKey(site, m, dim, step string, bucket int64) string {
	return s.sitePrefix(site) + "t:" + m + ":" + dim + ":" + step + ":" + strconv.FormatInt(bucket, 10)
}

func (s *Store) uniqueKey(site, m, step string, bucket int64) string {
	return s.sitePrefix(site) + "u:" + m + ":" + step + ":" + strconv.FormatInt(bucket, 10)
}

func (s *Store) checkpointKey(site string) string { return s.sitePrefix(site) + "ck" }

func (s *Store) deltaSeqKey(site, m string) string { return s.sitePrefix(site) + "dseq:" + m }

// DeltaLogKey is the stream holding the recent deltas of a site's metric:
// entries with id "N-0" and one field "d" holding the JSON DeltaEntry.
func (s *Store) DeltaLogKey(site, m string) string { return s.sitePrefix(site) + "dlog:" + m }

// DeltaChannel is the pub/sub channel each delta of a site's metric is
// published on, with the same JSON as the delta log entry.
func (s *Store) DeltaChannel(site, m string) string { return s.sitePrefix(site) + "deltas:" + m }

func (s *Store) positionKey(shard string) string {
	return "p:" + s.cfg.Namespace + ":{" + shard + "}:pos"
}
