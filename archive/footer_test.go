package archive

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// parquetWith frames footer as a Parquet file: header magic, footer, its
// length and footer magic.
func parquetWith(footer []byte) []byte {
	b := append([]byte("PAR1"), footer...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(footer)))
	return append(b, "PAR1"...)
}

func TestCheckFooter(t *testing.T) {
	valid := encodeRecs(t, genRecords(1, 5, 1, 1, testStart))
	lying := bytes.Clone(valid)
	binary.LittleEndian.PutUint32(lying[len(lying)-8:], 0x64690218) // 1.7 GB footer

	deep := bytes.Repeat([]byte{0x1c}, 100) // a struct field in a struct in ...
	deep = append(deep, bytes.Repeat([]byte{0}, 101)...)

	tests := []struct {
		name string
		body []byte
		want string // "" when the footer is fine
	}{
		{"object written by encodeObject", valid, ""},
		{"empty struct", parquetWith([]byte{0}), ""},
		{"too short", []byte("PAR1PAR1"), "too short"},
		{"encrypted footer", append(bytes.Clone(valid[:len(valid)-4]), "PARE"...), `footer magic "PARE"`},
		{"footer longer than the file", lying, "footer of 1684603416 bytes"},
		{"zero-length footer", parquetWith(nil), "footer of 0 bytes"},
		// row_groups (field 4) as a list of 2^31-1 structs in 10 bytes.
		{"list longer than the footer", parquetWith([]byte{0x49, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07, 0, 0, 0}), "2147483647 elements with 3 bytes left"},
		// key_value_metadata (field 5) as a map of 2^28 entries.
		{"map longer than the footer", parquetWith([]byte{0x5b, 0x80, 0x80, 0x80, 0x80, 0x01, 0x88, 0}), "268435456 elements"},
		{"string longer than the footer", parquetWith([]byte{0x68, 0xff, 0x01, 'x', 0}), "length 255 with 2 bytes left"},
		{"nesting deeper than metadata goes", parquetWith(deep), "nested deeper than 32"},
		{"no stop", parquetWith([]byte{0x15, 0x02}), "truncated"},
		{"unknown type", parquetWith([]byte{0x1d, 0}), "unknown type 13"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkFooter(bytes.NewReader(tt.body), int64(len(tt.body)))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("checkFooter: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("checkFooter = %v, want an error containing %q", err, tt.want)
			}
			if tt.want != "" {
				// decodeObject refuses it with the same error, before the
				// Parquet library sees it.
				derr := decodeObject(bytes.NewReader(tt.body), int64(len(tt.body)), func(*row) error { return nil })
				if derr == nil || derr.Error() != err.Error() {
					t.Fatalf("decodeObject = %v, want %v", derr, err)
				}
			}
		})
	}
}
