package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// aggregate wraps a hand-written protobuf body as the format describes:
// magic, body, MD5 of body.
func aggregate(body ...[]byte) []byte {
	pb := bytes.Join(body, nil)
	sum := md5.Sum(pb)
	out := append([]byte{0xF3, 0x89, 0x9A, 0xC2}, pb...)
	return append(out, sum[:]...)
}

// Hand-written protobuf pieces. Tags: field<<3 | wiretype (0 varint, 2 bytes).
var (
	pkA  = []byte{0x0A, 0x01, 'a'} // partition_key_table "a"
	pkB  = []byte{0x0A, 0x01, 'b'} // partition_key_table "b"
	ehk5 = []byte{0x12, 0x01, '5'} // explicit_hash_key_table "5"
	// records { partition_key_index 0, data "x" }
	recAx = []byte{0x1A, 0x05, 0x08, 0x00, 0x1A, 0x01, 'x'}
	// records { partition_key_index 0, explicit_hash_key_index 0, data "yz" }
	recA5yz = []byte{0x1A, 0x08, 0x08, 0x00, 0x10, 0x00, 0x1A, 0x02, 'y', 'z'}
	// records { partition_key_index 1, data "", tags { key "t", value "v" } }
	recBtag = []byte{0x1A, 0x0C, 0x08, 0x01, 0x1A, 0x00, 0x22, 0x06, 0x0A, 0x01, 't', 0x12, 0x01, 'v'}
)

var vectorRecords = []Record{
	{PartitionKey: "a", Data: []byte("x")},
	{PartitionKey: "a", ExplicitHashKey: "5", Data: []byte("yz")},
	{PartitionKey: "b", Data: []byte{}, Tags: []Tag{{Key: "t", Value: "v"}}},
}

func TestEncodeVector(t *testing.T) {
	want := aggregate(pkA, pkB, ehk5, recAx, recA5yz, recBtag)
	got, err := Encode(vectorRecords)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Encode:\n got %x\nwant %x", got, want)
	}
	if n := Size(vectorRecords); n != len(want) {
		t.Fatalf("Size = %d, encoded %d bytes", n, len(want))
	}
}

func TestDecode(t *testing.T) {
	valid := aggregate(pkA, pkB, ehk5, recAx, recA5yz, recBtag)
	badMD5 := bytes.Clone(valid)
	badMD5[len(badMD5)-1] ^= 1
	badMagic := bytes.Clone(valid)
	badMagic[0] = 0xF4
	tests := []struct {
		name       string
		in         []byte
		want       []Record
		aggregated bool
		corrupt    bool
	}{
		{name: "vector", in: valid, want: vectorRecords, aggregated: true},
		{
			// Protobuf fields may come in any order; tables after records still resolve.
			name:       "fields interleaved",
			in:         aggregate(recA5yz, pkA, recAx, ehk5),
			want:       []Record{{PartitionKey: "a", ExplicitHashKey: "5", Data: []byte("yz")}, {PartitionKey: "a", Data: []byte("x")}},
			aggregated: true,
		},
		{
			name:       "unknown fields skipped",
			in:         aggregate([]byte{0x28, 0x07}, pkA, []byte{0x1A, 0x07, 0x08, 0x00, 0x1A, 0x01, 'x', 0x30, 0x01}),
			want:       []Record{{PartitionKey: "a", Data: []byte("x")}},
			aggregated: true,
		},
		{name: "no records", in: aggregate(), want: []Record{}, aggregated: true},
		{name: "plain", in: []byte(`{"id":"1"}`), want: []Record{{Data: []byte(`{"id":"1"}`)}}},
		{name: "empty", in: []byte{}, want: []Record{{Data: []byte{}}}},
		{name: "magic only", in: []byte{0xF3, 0x89, 0x9A, 0xC2}, want: []Record{{Data: []byte{0xF3, 0x89, 0x9A, 0xC2}}}},
		// KCL rule: a record whose magic or MD5 does not match is a plain record.
		{name: "bad md5 is plain", in: badMD5, want: []Record{{Data: badMD5}}},
		{name: "bad magic is plain", in: badMagic, want: []Record{{Data: badMagic}}},
		// Magic and MD5 match, so it was meant as aggregated: malformed protobuf is an error.
		{name: "truncated record", in: aggregate(pkA, recAx[:5]), aggregated: true, corrupt: true},
		{name: "truncated varint", in: aggregate(pkA, []byte{0x1A, 0x02, 0x08, 0x80}), aggregated: true, corrupt: true},
		{name: "pk index out of range", in: aggregate(pkA, []byte{0x1A, 0x05, 0x08, 0x01, 0x1A, 0x01, 'x'}), aggregated: true, corrupt: true},
		{name: "ehk index out of range", in: aggregate(pkA, []byte{0x1A, 0x07, 0x08, 0x00, 0x10, 0x00, 0x1A, 0x01, 'x'}), aggregated: true, corrupt: true},
		{name: "missing data", in: aggregate(pkA, []byte{0x1A, 0x02, 0x08, 0x00}), aggregated: true, corrupt: true},
		{name: "missing partition key index", in: aggregate(pkA, []byte{0x1A, 0x03, 0x1A, 0x01, 'x'}), aggregated: true, corrupt: true},
		{name: "tag without key", in: aggregate(pkA, []byte{0x1A, 0x09, 0x08, 0x00, 0x1A, 0x01, 'x', 0x22, 0x02, 0x12, 0x00}), aggregated: true, corrupt: true},
		{name: "wrong wire type", in: aggregate([]byte{0x0F}), aggregated: true, corrupt: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, aggregated, err := Decode(tt.in)
			if aggregated != tt.aggregated {
				t.Errorf("aggregated = %v, want %v", aggregated, tt.aggregated)
			}
			if tt.corrupt {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0xAB}, 300)
	tests := []struct {
		name    string
		records []Record
	}{
		{name: "one", records: []Record{{PartitionKey: "k", Data: []byte("v")}}},
		{name: "shared keys", records: []Record{
			{PartitionKey: "demo/1", Data: []byte("a")},
			{PartitionKey: "demo/2", Data: []byte("b")},
			{PartitionKey: "demo/1", Data: []byte("c")},
		}},
		{name: "hash keys", records: []Record{
			{PartitionKey: "p", ExplicitHashKey: "340282366920938463463374607431768211455", Data: big},
			{PartitionKey: "q", ExplicitHashKey: "0", Data: big},
			{PartitionKey: "r", Data: big},
			{PartitionKey: "s", ExplicitHashKey: "0", Data: big},
		}},
		{name: "tags", records: []Record{{PartitionKey: "p", Data: []byte("d"), Tags: []Tag{{Key: "a"}, {Key: "b", Value: "c"}}}}},
		{name: "many", records: func() []Record {
			var rs []Record
			for i := range 1000 {
				rs = append(rs, Record{PartitionKey: fmt.Sprintf("site/%d", i%37), Data: []byte(strings.Repeat("x", i%200))})
			}
			return rs
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Builder
			for i, r := range tt.records {
				want := b.SizeWith(r)
				b.Add(r)
				if b.Size() != want {
					t.Fatalf("record %d: Size %d after Add, SizeWith said %d", i, b.Size(), want)
				}
			}
			enc, err := b.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if len(enc) != b.Size() {
				t.Fatalf("encoded %d bytes, Size %d", len(enc), b.Size())
			}
			got, aggregated, err := Decode(enc)
			if err != nil || !aggregated {
				t.Fatalf("Decode: aggregated=%v err=%v", aggregated, err)
			}
			if !reflect.DeepEqual(got, tt.records) {
				t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, tt.records)
			}
			b.Reset()
			if b.Len() != 0 || b.Size() != Overhead {
				t.Fatalf("after Reset: Len %d Size %d", b.Len(), b.Size())
			}
		})
	}
}
