package push

import (
	"encoding/binary"
	"net"
	"sync"
)

// wsConn is the hijacked connection under a WebSocket. The library writes
// its control frames (pings, pongs, the close) through it, each as one
// Write of a whole frame (a control frame fits its 512-byte buffer); the
// connection's writer writes data frames itself, several at once, so a
// batch of queued messages costs one system call instead of one per
// message, and a message costs no library lock or context watch. mu
// keeps frames whole: no Write starts inside another's frame.
type wsConn struct {
	net.Conn

	mu        sync.Mutex
	closeSent bool // under mu: a close frame went out; no data frame may follow it
}

// opClose is the opcode of a close frame (RFC 6455 5.5.1).
const opClose = 0x8

// Write writes p, one whole frame or more, for the WebSocket library.
func (w *wsConn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closeSent {
		return 0, net.ErrClosed
	}
	if len(p) > 0 && p[0]&0x0f == opClose {
		w.closeSent = true
	}
	return w.Conn.Write(p)
}

// writeFrames writes b, whole data frames made by appendTextFrame.
func (w *wsConn) writeFrames(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closeSent {
		return net.ErrClosed
	}
	_, err := w.Conn.Write(b)
	return err
}

// appendTextFrame appends one unfragmented, unmasked text frame holding
// prefix then body (RFC 6455 5.2: a server never masks).
func appendTextFrame(buf, prefix, body []byte) []byte {
	n := len(prefix) + len(body)
	switch {
	case n < 126:
		buf = append(buf, 0x81, byte(n))
	case n <= 0xffff:
		buf = append(buf, 0x81, 126)
		buf = binary.BigEndian.AppendUint16(buf, uint16(n))
	default:
		buf = append(buf, 0x81, 127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	}
	return append(append(buf, prefix...), body...)
}
