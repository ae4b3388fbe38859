package kpl

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzDecode checks that Decode never panics, that a non-aggregated input
// comes back whole, and that whatever decodes as aggregated re-encodes to
// records that decode the same. Seeds are in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add(aggregate(pkA, pkB, ehk5, recAx, recA5yz, recBtag))
	f.Add([]byte(`{"id":"1","site":"demo"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		records, aggregated, err := Decode(b)
		if err != nil {
			if !aggregated || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v with aggregated=%v", err, aggregated)
			}
			return
		}
		if !aggregated {
			if len(records) != 1 || !bytes.Equal(records[0].Data, b) {
				t.Fatalf("plain input not returned whole: %+v", records)
			}
			return
		}
		enc, err := Encode(records)
		if err != nil {
			t.Fatal(err)
		}
		again, aggregated, err := Decode(enc)
		if err != nil || !aggregated {
			t.Fatalf("re-decode: aggregated=%v err=%v", aggregated, err)
		}
		if len(again) != len(records) {
			t.Fatalf("re-decode: %d records, want %d", len(again), len(records))
		}
		for i := range records {
			a, b := records[i], again[i]
			if a.PartitionKey != b.PartitionKey || a.ExplicitHashKey != b.ExplicitHashKey ||
				!bytes.Equal(a.Data, b.Data) || !reflect.DeepEqual(normTags(a.Tags), normTags(b.Tags)) {
				t.Fatalf("record %d: %+v re-decoded as %+v", i, a, b)
			}
		}
	})
}

func normTags(ts []Tag) []Tag {
	if len(ts) == 0 {
		return nil
	}
	return ts
}
