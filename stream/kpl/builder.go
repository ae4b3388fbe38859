package kpl

import (
	"crypto/md5"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Builder packs records one at a time and knows the exact encoded size at
// every step, so a producer can stop before a Kinesis limit. The zero value
// is empty and ready; a Builder is not safe for concurrent use.
type Builder struct {
	pkIndex  map[string]uint64
	ehkIndex map[string]uint64
	pks      []string
	ehks     []string
	records  []Record
	body     int // protobuf bytes so far
}

// Len is the number of records added.
func (b *Builder) Len() int { return len(b.records) }

// Records are the records added, in order. The slice is the Builder's own.
func (b *Builder) Records() []Record { return b.records }

// Size is the encoded size of the aggregated record, magic and MD5 included.
func (b *Builder) Size() int { return Overhead + b.body }

// SizeWith is what Size would be after Add(r).
func (b *Builder) SizeWith(r Record) int {
	return Overhead + b.body + b.grow(r)
}

// Add appends r.
func (b *Builder) Add(r Record) {
	b.body += b.grow(r)
	if b.pkIndex == nil {
		b.pkIndex = make(map[string]uint64)
		b.ehkIndex = make(map[string]uint64)
	}
	if _, ok := b.pkIndex[r.PartitionKey]; !ok {
		b.pkIndex[r.PartitionKey] = uint64(len(b.pks))
		b.pks = append(b.pks, r.PartitionKey)
	}
	if _, ok := b.ehkIndex[r.ExplicitHashKey]; !ok && r.ExplicitHashKey != "" {
		b.ehkIndex[r.ExplicitHashKey] = uint64(len(b.ehks))
		b.ehks = append(b.ehks, r.ExplicitHashKey)
	}
	b.records = append(b.records, r)
}

// Reset empties the Builder, keeping its allocations.
func (b *Builder) Reset() {
	clear(b.pkIndex)
	clear(b.ehkIndex)
	b.pks = b.pks[:0]
	b.ehks = b.ehks[:0]
	b.records = b.records[:0]
	b.body = 0
}

// grow is the number of protobuf bytes adding r costs: its table entries
// when its keys are new, and its Record message.
func (b *Builder) grow(r Record) int {
	n := 0
	pk, ok := b.pkIndex[r.PartitionKey]
	if !ok {
		pk = uint64(len(b.pks))
		n += stringField(r.PartitionKey)
	}
	ehk, hasEHK := uint64(0), r.ExplicitHashKey != ""
	if hasEHK {
		ehk, ok = b.ehkIndex[r.ExplicitHashKey]
		if !ok {
			ehk = uint64(len(b.ehks))
			n += stringField(r.ExplicitHashKey)
		}
	}
	m := recordLen(pk, ehk, hasEHK, r)
	return n + 1 + protowire.SizeVarint(uint64(m)) + m
}

// Encode returns the aggregated record of the records added.
func (b *Builder) Encode() ([]byte, error) {
	out := make([]byte, 0, b.Size())
	out = append(out, magic[:]...)
	for _, k := range b.pks {
		out = protowire.AppendTag(out, fieldPartitionKeyTable, protowire.BytesType)
		out = protowire.AppendString(out, k)
	}
	for _, k := range b.ehks {
		out = protowire.AppendTag(out, fieldExplicitHashKeyTable, protowire.BytesType)
		out = protowire.AppendString(out, k)
	}
	for _, r := range b.records {
		pk := b.pkIndex[r.PartitionKey]
		ehk, hasEHK := b.ehkIndex[r.ExplicitHashKey]
		hasEHK = hasEHK && r.ExplicitHashKey != ""
		out = protowire.AppendTag(out, fieldRecords, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(recordLen(pk, ehk, hasEHK, r)))
		out = protowire.AppendTag(out, fieldPartitionKeyIndex, protowire.VarintType)
		out = protowire.AppendVarint(out, pk)
		if hasEHK {
			out = protowire.AppendTag(out, fieldExplicitHashKeyIndex, protowire.VarintType)
			out = protowire.AppendVarint(out, ehk)
		}
		out = protowire.AppendTag(out, fieldData, protowire.BytesType)
		out = protowire.AppendBytes(out, r.Data)
		for _, t := range r.Tags {
			out = protowire.AppendTag(out, fieldTags, protowire.BytesType)
			out = protowire.AppendVarint(out, uint64(tagLen(t)))
			out = protowire.AppendTag(out, fieldTagKey, protowire.BytesType)
			out = protowire.AppendString(out, t.Key)
			if t.Value != "" {
				out = protowire.AppendTag(out, fieldTagValue, protowire.BytesType)
				out = protowire.AppendString(out, t.Value)
			}
		}
	}
	if len(out) != magicLen+b.body {
		return nil, fmt.Errorf("kpl: encode: wrote %d protobuf bytes, sized %d", len(out)-magicLen, b.body)
	}
	sum := md5.Sum(out[magicLen:])
	return append(out, sum[:]...), nil
}

// Size is the encoded size of the aggregated record of records.
func Size(records []Record) int {
	var b Builder
	for _, r := range records {
		b.Add(r)
	}
	return b.Size()
}

func stringField(s string) int {
	return 1 + protowire.SizeBytes(len(s))
}

func recordLen(pk, ehk uint64, hasEHK bool, r Record) int {
	n := 1 + protowire.SizeVarint(pk) + 1 + protowire.SizeBytes(len(r.Data))
	if hasEHK {
		n += 1 + protowire.SizeVarint(ehk)
	}
	for _, t := range r.Tags {
		m := tagLen(t)
		n += 1 + protowire.SizeVarint(uint64(m)) + m
	}
	return n
}

func tagLen(t Tag) int {
	n := stringField(t.Key)
	if t.Value != "" {
		n += stringField(t.Value)
	}
	return n
}
