package archive

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// SeqWidth is the width seqs are zero-padded to in object names, so names of
// one shard sort by their records' order. Kinesis sequence numbers have up to
// 56 digits and stream/kinesis appends 6 for the sub-record of an aggregated
// record, 62 in all; the local log's uint64 seqs have at most 20.
const SeqWidth = 62

// ext is the suffix of every archive object.
const ext = ".parquet"

// ErrBadKey is returned for an object key or a shard id that does not follow
// the archive layout.
var ErrBadKey = errors.New("archive: bad key")

// Partition is one hour of receive time (rt), the unit of the layout's
// Hive-style partitions dt=YYYY-MM-DD/hr=HH/.
type Partition int64 // hours since the Unix epoch

// PartitionOf is the partition of a time in ms since the epoch.
func PartitionOf(tsMillis int64) Partition {
	h := tsMillis / int64(time.Hour/time.Millisecond)
	if tsMillis < 0 && tsMillis%int64(time.Hour/time.Millisecond) != 0 {
		h-- // floor, not truncation, for times before 1970
	}
	return Partition(h)
}

// Start is the first instant of the partition.
func (p Partition) Start() time.Time { return time.Unix(int64(p)*3600, 0).UTC() }

// Prefix is the key prefix of the partition: "dt=2026-11-27/hr=15/".
func (p Partition) Prefix() string {
	t := p.Start()
	return fmt.Sprintf("dt=%s/hr=%02d/", t.Format(time.DateOnly), t.Hour())
}

// ObjectKey names the object holding the records first..last of a shard in
// partition p. It is a pure function of its inputs, which is what makes a
// rewrite after a crash hit the same key.
func ObjectKey(p Partition, shard, first, last string) string {
	return p.Prefix() + shard + "-" + padSeq(first) + "-" + padSeq(last) + ext
}

// KeyInfo is what an object key says about its content.
type KeyInfo struct {
	Partition Partition
	Shard     string
	First     string // first seq, without padding
	Last      string // last seq, without padding
}

// ParseKey reads an object key made by ObjectKey (relative to the store's
// prefix). Shard ids may contain '-', so the two fixed-width seqs are taken
// from the right.
func ParseKey(key string) (KeyInfo, error) {
	bad := func(why string) (KeyInfo, error) {
		return KeyInfo{}, fmt.Errorf("%w %q: %s", ErrBadKey, key, why)
	}
	const dirLen = len("dt=2006-01-02/hr=15/")
	if len(key) < dirLen || !strings.HasSuffix(key, ext) {
		return bad("want dt=YYYY-MM-DD/hr=HH/SHARD-FIRST-LAST.parquet")
	}
	if key[:3] != "dt=" || key[13:17] != "/hr=" || key[19] != '/' {
		return bad("want dt=YYYY-MM-DD/hr=HH/ prefix")
	}
	day, err := time.Parse(time.DateOnly, key[3:13])
	if err != nil {
		return bad("date: " + err.Error())
	}
	hr, ok := atoi2(key[17:19])
	if !ok || hr > 23 {
		return bad("hour")
	}
	name := strings.TrimSuffix(key[dirLen:], ext)
	const tail = 1 + SeqWidth + 1 + SeqWidth
	if len(name) < 1+tail {
		return bad("name too short")
	}
	shard := name[:len(name)-tail]
	rest := name[len(name)-tail:]
	if rest[0] != '-' || rest[1+SeqWidth] != '-' {
		return bad("want SHARD-FIRST-LAST")
	}
	if err := checkShard(shard); err != nil {
		return bad(err.Error())
	}
	first, ok1 := unpadSeq(rest[1 : 1+SeqWidth])
	last, ok2 := unpadSeq(rest[2+SeqWidth:])
	if !ok1 || !ok2 {
		return bad("seqs must be digits")
	}
	p := Partition(day.Unix()/3600 + int64(hr))
	return KeyInfo{Partition: p, Shard: shard, First: first, Last: last}, nil
}

func atoi2(s string) (int, bool) {
	if len(s) != 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return 0, false
	}
	return int(s[0]-'0')*10 + int(s[1]-'0'), true
}

// checkShard keeps shard ids safe as a file name and an S3 key part.
func checkShard(shard string) error {
	if shard == "" || len(shard) > 128 {
		return fmt.Errorf("shard id %q: want 1-128 chars", shard)
	}
	for i := 0; i < len(shard); i++ {
		c := shard[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("shard id %q: want [A-Za-z0-9_.-]", shard)
		}
	}
	if shard[0] == '.' {
		return fmt.Errorf("shard id %q: must not start with '.'", shard)
	}
	return nil
}

// checkSeq accepts the sequence numbers of stream.CompareSeq: decimal digits
// without leading zeros, at most SeqWidth of them.
func checkSeq(seq string) error {
	if seq == "" || len(seq) > SeqWidth {
		return fmt.Errorf("seq %q: want 1-%d digits", seq, SeqWidth)
	}
	if len(seq) > 1 && seq[0] == '0' {
		return fmt.Errorf("seq %q: leading zero", seq)
	}
	for i := 0; i < len(seq); i++ {
		if seq[i] < '0' || seq[i] > '9' {
			return fmt.Errorf("seq %q: want decimal digits", seq)
		}
	}
	return nil
}

func padSeq(seq string) string {
	return strings.Repeat("0", SeqWidth-len(seq)) + seq
}

func unpadSeq(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	t := strings.TrimLeft(s, "0")
	if t == "" {
		t = "0"
	}
	return t, true
}
