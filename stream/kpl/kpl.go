// Package kpl encodes and decodes the Kinesis Producer Library's aggregated
// record format, which packs many user records into one Kinesis record:
//
//	magic 0xF3 0x89 0x9A 0xC2
//	protobuf AggregatedRecord {
//	  repeated string partition_key_table     = 1;
//	  repeated string explicit_hash_key_table = 2;
//	  repeated Record records                 = 3;
//	}
//	Record { required uint64 partition_key_index = 1; optional uint64 explicit_hash_key_index = 2;
//	         required bytes data = 3; repeated Tag tags = 4; }
//	Tag    { required string key = 1; optional string value = 2; }
//	MD5 (16 bytes) of the protobuf bytes
//
// Records written by the KPL, by the Kinesis aggregation libraries and by
// stream/kinesis decode alike, and Kinesis consumers that follow the KCL
// (Lambda, Firehose, the KCL itself) de-aggregate what Encode writes.
// Functions of this package are safe for concurrent use; a Builder is not.
package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Magic starts every aggregated record.
var magic = [4]byte{0xF3, 0x89, 0x9A, 0xC2}

const (
	magicLen    = 4
	checksumLen = md5.Size
	// Overhead is the bytes an aggregated record adds around its protobuf body.
	Overhead = magicLen + checksumLen
)

// Protobuf field numbers of the format.
const (
	fieldPartitionKeyTable    = 1
	fieldExplicitHashKeyTable = 2
	fieldRecords              = 3

	fieldPartitionKeyIndex    = 1
	fieldExplicitHashKeyIndex = 2
	fieldData                 = 3
	fieldTags                 = 4

	fieldTagKey   = 1
	fieldTagValue = 2
)

// Record is one user record inside an aggregated record.
type Record struct {
	PartitionKey    string
	ExplicitHashKey string // decimal 128-bit hash key; "" when the record has none
	Data            []byte
	Tags            []Tag
}

// Tag is a key/value label on a record; the KPL defines it, nothing reads it.
type Tag struct {
	Key   string
	Value string // "" when absent
}

// ErrCorrupt is returned by Decode for a record that carries the magic and a
// matching checksum but whose protobuf body is malformed: it was meant to be
// an aggregated record and cannot be read as one.
var ErrCorrupt = errors.New("kpl: corrupt aggregated record")

// Encode packs records into one aggregated record. Partition keys and explicit
// hash keys that repeat are stored once in their tables.
func Encode(records []Record) ([]byte, error) {
	var b Builder
	for _, r := range records {
		b.Add(r)
	}
	return b.Encode()
}

// Decode unpacks b. When b is an aggregated record it returns its user
// records (Data aliases b) and aggregated=true. Following the KCL rule, a
// record without the magic prefix, too short to hold magic and checksum, or
// whose MD5 does not match is not aggregated: it comes back as one Record
// whose Data is b, with aggregated=false and no error. A record whose magic
// and MD5 match but whose protobuf is malformed (truncated, a required field
// missing, a table index out of range) is an error wrapping ErrCorrupt, as
// the KCL fails on it too; callers decide whether to pass it on as raw data.
func Decode(b []byte) (records []Record, aggregated bool, err error) {
	if !IsAggregated(b) {
		return []Record{{Data: b}}, false, nil
	}
	body := b[magicLen : len(b)-checksumLen]
	records, err = decodeBody(body)
	if err != nil {
		return nil, true, err
	}
	return records, true, nil
}

// IsAggregated reports whether b has the magic prefix and a matching MD5 of
// its body, the KCL's test for an aggregated record.
func IsAggregated(b []byte) bool {
	if len(b) < Overhead || !bytes.Equal(b[:magicLen], magic[:]) {
		return false
	}
	sum := md5.Sum(b[magicLen : len(b)-checksumLen])
	return bytes.Equal(sum[:], b[len(b)-checksumLen:])
}

func decodeBody(body []byte) ([]Record, error) {
	var pks, ehks []string
	var raws []rawRecord
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return nil, corrupt("tag", protowire.ParseError(n))
		}
		body = body[n:]
		switch {
		case num == fieldPartitionKeyTable && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(body)
			if n < 0 {
				return nil, corrupt("partition key table", protowire.ParseError(n))
			}
			pks = append(pks, string(v))
			body = body[n:]
		case num == fieldExplicitHashKeyTable && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(body)
			if n < 0 {
				return nil, corrupt("explicit hash key table", protowire.ParseError(n))
			}
			ehks = append(ehks, string(v))
			body = body[n:]
		case num == fieldRecords && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(body)
			if n < 0 {
				return nil, corrupt("record", protowire.ParseError(n))
			}
			body = body[n:]
			r, err := decodeRecord(v)
			if err != nil {
				return nil, fmt.Errorf("%w: record %d: %w", ErrCorrupt, len(raws), err)
			}
			raws = append(raws, r)
		default:
			n := protowire.ConsumeFieldValue(num, typ, body)
			if n < 0 {
				return nil, corrupt("unknown field", protowire.ParseError(n))
			}
			body = body[n:]
		}
	}
	records := make([]Record, len(raws))
	for i, r := range raws {
		if !r.hasPK || !r.hasData {
			return nil, fmt.Errorf("%w: record %d: required field missing", ErrCorrupt, i)
		}
		if r.pk >= uint64(len(pks)) {
			return nil, fmt.Errorf("%w: record %d: partition key index %d out of %d", ErrCorrupt, i, r.pk, len(pks))
		}
		records[i] = Record{PartitionKey: pks[r.pk], Data: r.data, Tags: r.tags}
		if r.hasEHK {
			if r.ehk >= uint64(len(ehks)) {
				return nil, fmt.Errorf("%w: record %d: explicit hash key index %d out of %d", ErrCorrupt, i, r.ehk, len(ehks))
			}
			records[i].ExplicitHashKey = ehks[r.ehk]
		}
	}
	return records, nil
}

// rawRecord is a Record before its table indexes are resolved.
type rawRecord struct {
	pk, ehk       uint64
	hasPK, hasEHK bool
	hasData       bool
	data          []byte
	tags          []Tag
}

func decodeRecord(b []byte) (r rawRecord, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return r, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == fieldPartitionKeyIndex && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return r, protowire.ParseError(n)
			}
			r.pk, r.hasPK = v, true
			b = b[n:]
		case num == fieldExplicitHashKeyIndex && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return r, protowire.ParseError(n)
			}
			r.ehk, r.hasEHK = v, true
			b = b[n:]
		case num == fieldData && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return r, protowire.ParseError(n)
			}
			r.data, r.hasData = v, true
			b = b[n:]
		case num == fieldTags && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return r, protowire.ParseError(n)
			}
			t, err := decodeTag(v)
			if err != nil {
				return r, fmt.Errorf("tag: %w", err)
			}
			r.tags = append(r.tags, t)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return r, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return r, nil
}

func decodeTag(b []byte) (Tag, error) {
	var t Tag
	hasKey := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return t, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case (num == fieldTagKey || num == fieldTagValue) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return t, protowire.ParseError(n)
			}
			if num == fieldTagKey {
				t.Key, hasKey = string(v), true
			} else {
				t.Value = string(v)
			}
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return t, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	if !hasKey {
		return t, errors.New("required key missing")
	}
	return t, nil
}

func corrupt(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrCorrupt, what, err)
}
