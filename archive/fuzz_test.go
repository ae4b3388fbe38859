package archive

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParseKey checks that ParseKey never panics and that every key it
// accepts is exactly the key ObjectKey makes from what it parsed.
func FuzzParseKey(f *testing.F) {
	f.Add("dt=2026-11-27/hr=15/shardId-000000000003-" + padSeq("49590338271490256608559692538361571095921575989136588898") + "-" + padSeq("49590338271490256608559692538361571095921575989136588899") + ".parquet")
	f.Add("dt=2026-11-27/hr=15/x.parquet")
	f.Fuzz(func(t *testing.T, key string) {
		info, err := ParseKey(key)
		if err != nil {
			return
		}
		if back := ObjectKey(info.Partition, info.Shard, info.First, info.Last); back != key {
			t.Fatalf("ParseKey(%q) = %+v, which names %q", key, info, back)
		}
	})
}

// FuzzDecodeObject feeds arbitrary bytes to the object decoder: it must
// return an error or rows, never panic, and rows it returns must survive an
// encode/decode round trip unchanged.
func FuzzDecodeObject(f *testing.F) {
	body := encodeRecs(f, genRecords(3, 5, 1, 1, testStart))
	f.Add(body)
	f.Add([]byte("PAR1"))
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []row
		err := decodeObject(bytes.NewReader(body), int64(len(body)), func(r *row) error {
			got = append(got, *r)
			return nil
		})
		if err != nil || len(got) == 0 {
			return
		}
		again, err := encodeObject(got)
		if err != nil {
			t.Fatalf("re-encode decoded rows: %v", err)
		}
		var back []row
		if err := decodeObject(bytes.NewReader(again), int64(len(again)), func(r *row) error {
			back = append(back, *r)
			return nil
		}); err != nil {
			t.Fatalf("decode re-encoded rows: %v", err)
		}
		if !reflect.DeepEqual(back, got) {
			t.Fatalf("round trip changed rows")
		}
	})
}
