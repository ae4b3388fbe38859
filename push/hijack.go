package push

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
)

// Buffer sizes of a hijacked connection. Client messages are small and
// rare (at most Config.MaxMessageBytes, read through the buffer or straight
// into the message); the write buffer holds only the library's control
// frames, since the writer writes data frames to the connection itself. net/http's own 4 KiB buffers would stay live for the
// connection's life.
const (
	connReadBuf  = 256
	connWriteBuf = 512
)

// smallBufWriter hands websocket.Accept a hijacked connection with small
// bufio buffers, so net/http's conn and its 8 KiB of buffers become garbage
// once the handler returns. The connection is a *wsConn, kept in conn for
// the writer.
type smallBufWriter struct {
	http.ResponseWriter
	conn *wsConn
}

func (w *smallBufWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WriteHeader sends the status at once under writers that defer it (gin),
// as websocket.Accept does for them, since the hijack follows.
func (w *smallBufWriter) WriteHeader(code int) {
	w.ResponseWriter.WriteHeader(code)
	if g, ok := w.ResponseWriter.(interface{ WriteHeaderNow() }); ok {
		g.WriteHeaderNow()
	}
}

func (w *smallBufWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		_ = nc.Close()
		return nil, nil, fmt.Errorf("flush handshake: %w", err)
	}
	// Bytes the client sent after the handshake, already read: keep them
	// buffered, where websocket.Accept looks for them.
	n := brw.Reader.Buffered()
	early, _ := brw.Reader.Peek(n)
	br := bufio.NewReaderSize(bytes.NewReader(bytes.Clone(early)), max(n, connReadBuf))
	if n > 0 {
		if _, err := br.Peek(n); err != nil {
			_ = nc.Close()
			return nil, nil, fmt.Errorf("keep early bytes: %w", err)
		}
	}
	w.conn = &wsConn{Conn: nc}
	return w.conn, bufio.NewReadWriter(br, bufio.NewWriterSize(w.conn, connWriteBuf)), nil
}
