package local

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		seq  uint64
		ms   int64
		key  string
		data []byte
	}{
		{"empty key and data", 1, 0, "", nil},
		{"typical", 42, 1764258000123, "demo/01JDX6T8Q5", []byte(`{"site":"demo","type":"pageview"}`)},
		{"largest", 1<<64 - 1, -1, strings.Repeat("k", maxKeyBytes), bytes.Repeat([]byte{0xff}, maxDataSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendRecord([]byte("prefix"), tt.seq, tt.ms, tt.key, tt.data)[len("prefix"):]
			if len(b) != recordSize(tt.key, tt.data) {
				t.Fatalf("encoded %d bytes, recordSize says %d", len(b), recordSize(tt.key, tt.data))
			}
			r, n, err := decodeRecord(append(b, "next"...))
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b) || r.Seq != tt.seq || r.ArrivalMs != tt.ms || string(r.Key) != tt.key || !bytes.Equal(r.Data, tt.data) {
				t.Fatalf("decoded %+v (%d bytes)", r, n)
			}
			for cut := range len(b) {
				if _, _, err := decodeRecord(b[:cut]); !errors.Is(err, errShort) && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("cut at %d: %v", cut, err)
				}
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good := appendRecord(nil, 7, 1, "key", []byte("data"))
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
		want   error
	}{
		{"short header", func(b []byte) []byte { return b[:5] }, errShort},
		{"short body", func(b []byte) []byte { return b[:len(b)-1] }, errShort},
		{"length too small", func(b []byte) []byte { b[0] = 3; return b }, ErrCorrupt},
		{"length too large", func(b []byte) []byte { b[3] = 0x7f; return b }, ErrCorrupt},
		{"checksum", func(b []byte) []byte { b[5] ^= 1; return b }, ErrCorrupt},
		{"data byte", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrCorrupt},
		{"seq zero", func(b []byte) []byte { return appendRecord(nil, 0, 1, "k", nil) }, ErrCorrupt},
		{"key longer than body", func(b []byte) []byte {
			b = appendRecord(nil, 1, 1, "", []byte("ab"))
			b[headerSize+16] = 9
			return fixSum(b)
		}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.mutate(append([]byte(nil), good...))
			if _, _, err := decodeRecord(b); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

// fixSum recomputes the checksum so a test reaches the checks after it.
func fixSum(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[headerSize:], castagnoli))
	return b
}

// FuzzDecodeRecord checks that the decoder never panics, never reads past
// the record it reports, and that what it accepts encodes back to the
// same bytes.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, 1, 1764258000123, "demo/01JDX6T8Q5", []byte(`{"site":"demo"}`)))
	f.Add(appendRecord(nil, 1<<40, 0, "", nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, errShort) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if n > len(b) || n < headerSize+fixedBody {
			t.Fatalf("size %d of %d bytes", n, len(b))
		}
		again := appendRecord(nil, r.Seq, r.ArrivalMs, string(r.Key), r.Data)
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoded %x, decoded from %x", again, b[:n])
		}
	})
}
