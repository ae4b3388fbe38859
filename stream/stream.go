// Package stream holds the types shared by the stream backends (the embedded
// local log and Kinesis Data Streams) and their users. The interfaces over
// these types are declared where they are used: ingest declares what it puts,
// the aggregator and archiver declare what they read. Publisher is the one
// declared here, for TimedPublisher, which wraps any backend's puts.
package stream

import "time"

// Entry is one record to put: Key picks the shard (hash of the key, as
// Kinesis does with partition keys), Data is the payload.
type Entry struct {
	Key  string
	Data []byte
}

// Record is one record read back from a shard.
type Record struct {
	Seq     string    // sequence number, ordered within the shard; compare with CompareSeq
	Key     string    // partition key it was put with
	Data    []byte    // payload
	Arrival time.Time // when the stream accepted it
}

// Shard describes one shard of a stream.
type Shard struct {
	ID      string
	Parents []string // shards that must be read to their end before this one (after a reshard)
	Closed  bool     // no new records will arrive; read to its end it is finished
}

// Batch is the answer to one read of a shard.
type Batch struct {
	Records []Record
	// Behind is how far the reader is from the shard's tip: records not yet
	// read (-1 when the backend cannot tell) and the age of the newest
	// record returned.
	BehindRecords int64
	BehindMillis  int64
	// Ended is true when the shard is closed and every record was read.
	Ended bool
	// Trimmed is true when the position asked for was older than retention,
	// so the batch starts at the oldest retained record instead.
	Trimmed bool
}

// CompareSeq orders two sequence numbers of the same shard. Sequence numbers
// are decimal strings without leading zeros (Kinesis uses up to 56 digits,
// the local log uses uint64), so the longer one is larger and equal lengths
// compare as text. The empty string sorts before every sequence number.
func CompareSeq(a, b string) int {
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Startable returns the shards a reader may start now: not running, not
// ended, and whose parents ended or are no longer listed (trimmed from the
// stream). Reading a child only after its parents keeps per-key order and
// lets duplicates that straddle a reshard meet in the parent first.
func Startable(shards []Shard, running, ended map[string]bool) []string {
	listed := make(map[string]bool, len(shards))
	for _, s := range shards {
		listed[s.ID] = true
	}
	var out []string
	for _, s := range shards {
		if running[s.ID] || ended[s.ID] {
			continue
		}
		ready := true
		for _, p := range s.Parents {
			if listed[p] && !ended[p] {
				ready = false
			}
		}
		if ready {
			out = append(out, s.ID)
		}
	}
	return out
}

// PrevSeq returns the sequence number just before seq, so that reading
// after it starts at seq on a stream whose numbers count up by one (the
// local log); the one before 1 is "", the shard's start. On Kinesis the
// number before a record is usually no record at all.
func PrevSeq(seq string) string {
	if seq == "" || seq == "0" || seq == "1" {
		return ""
	}
	b := []byte(seq)
	i := len(b) - 1
	for ; i >= 0 && b[i] == '0'; i-- {
		b[i] = '9'
	}
	if i < 0 {
		return "" // not a decimal number; read from the start
	}
	b[i]--
	if b[0] == '0' && len(b) > 1 {
		b = b[1:]
	}
	return string(b)
}
