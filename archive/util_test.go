package archive

import (
	"bytes"
	"encoding/json"
	"io"
)

func bytesReaderAt(b []byte) io.ReaderAt { return bytes.NewReader(b) }

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
