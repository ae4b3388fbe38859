package push

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestAppendTextFrame checks the frame header at the payload lengths where
// RFC 6455 (5.2) changes the length's encoding: 7 bits up to 125, then 16,
// then 64; FIN set, text opcode, never masked.
func TestAppendTextFrame(t *testing.T) {
	for _, tc := range []struct {
		n      int
		header int // bytes before the payload
	}{
		{0, 2}, {125, 2}, {126, 4}, {65535, 4}, {65536, 10}, {70000, 10},
	} {
		prefix := []byte(`{"op":"delta","id":"s1",`)
		body := bytes.Repeat([]byte("x"), max(tc.n-len(prefix), 0))
		if tc.n < len(prefix) {
			prefix = prefix[:tc.n]
		}
		f := appendTextFrame([]byte("kept"), prefix, body)
		if !bytes.HasPrefix(f, []byte("kept")) {
			t.Fatalf("n=%d: the buffer's bytes were not kept", tc.n)
		}
		f = f[len("kept"):]
		if f[0] != 0x81 {
			t.Errorf("n=%d: first byte %#x, want 0x81 (FIN, text)", tc.n, f[0])
		}
		if f[1]&0x80 != 0 {
			t.Errorf("n=%d: masked", tc.n)
		}
		var got int
		switch l := f[1] & 0x7f; l {
		case 126:
			got = int(binary.BigEndian.Uint16(f[2:4]))
		case 127:
			got = int(binary.BigEndian.Uint64(f[2:10]))
		default:
			got = int(l)
		}
		if got != tc.n || len(f) != tc.header+tc.n {
			t.Errorf("n=%d: length field %d, frame %d bytes with a %d-byte header", tc.n, got, len(f), tc.header)
		}
		if !bytes.Equal(f[tc.header:], append(append([]byte(nil), prefix...), body...)) {
			t.Errorf("n=%d: payload is not prefix then body", tc.n)
		}
	}
}
