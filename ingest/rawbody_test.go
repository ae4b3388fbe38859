package ingest

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/event"
)

// emptyDeflate is a gzip header followed by an endless run of empty,
// non-final stored deflate blocks: every 5 bytes of input decompress to
// nothing, so only a bound on the compressed bytes stops the read.
type emptyDeflate struct{ n int64 }

func (e *emptyDeflate) Read(p []byte) (int, error) {
	header := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
	block := []byte{0, 0, 0, 0xff, 0xff} // BFINAL=0 BTYPE=00, LEN=0, NLEN=^0
	i := 0
	for ; i < len(p); i++ {
		if e.n < int64(len(header)) {
			p[i] = header[e.n]
		} else {
			p[i] = block[(e.n-int64(len(header)))%int64(len(block))]
		}
		e.n++
	}
	return i, nil
}

// TestCompressedBodyBound: a gzip body that decompresses to nothing is
// refused with 413 after at most rawBodyLimit bytes of it were read; a
// compressed body that is barely compressed (stored blocks, the worst an
// honest sender can do) of a batch just under MaxBodyBytes is accepted.
func TestCompressedBodyBound(t *testing.T) {
	max := int64(event.DefaultMaxBodyBytes)
	var honest bytes.Buffer
	{
		var plain bytes.Buffer
		plain.WriteString(`{"id":"a","site":"demo","type":"click","pad":"`)
		pad := max - int64(plain.Len()) - 3
		for i := int64(0); i < pad; i++ {
			plain.WriteByte("0123456789abcdef"[(i*7919)%16])
		}
		plain.WriteString(`"}` + "\n")
		zw, _ := gzip.NewWriterLevel(&honest, gzip.NoCompression)
		zw.Write(plain.Bytes())
		zw.Close()
		if int64(honest.Len()) <= max {
			t.Fatalf("the honest body compressed to %d bytes; want more than %d to test the raw bound's slack", honest.Len(), max)
		}
	}
	bomb := &emptyDeflate{}
	tests := []struct {
		name   string
		body   io.Reader
		status int
		errSub string
	}{
		{"empty deflate blocks", io.LimitReader(bomb, 20<<20), 413, "compressed body larger than"},
		{"stored blocks just under the limit", bytes.NewReader(honest.Bytes()), 202, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newServer(t, &memPub{}, Config{})
			req := httptest.NewRequest(http.MethodPost, "/v1/collect", tt.body)
			req.ContentLength = -1 // chunked: the server cannot refuse on the header
			req.Header.Set("Content-Encoding", "gzip")
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.errSub) {
				t.Fatalf("status %d %s, want %d with %q", w.Code, w.Body, tt.status, tt.errSub)
			}
		})
	}
	if limit := rawBodyLimit(max); bomb.n > limit+1 {
		t.Errorf("read %d bytes of the bomb, want at most the raw limit %d", bomb.n, limit)
	} else {
		t.Logf("read %d of 20 MiB of empty deflate blocks; raw limit %d", bomb.n, limit)
	}
}
