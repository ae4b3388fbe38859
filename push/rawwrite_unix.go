//go:build unix

package push

import (
	"net"
	"syscall"
)

// rawWriter makes one non-blocking write(2) to a socket; one per hub loop,
// reused, so a write allocates nothing.
type rawWriter struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // w.write, bound once
}

func newRawWriter() *rawWriter {
	w := &rawWriter{}
	w.fn = w.write
	return w
}

func (w *rawWriter) write(fd uintptr) bool {
	w.n, w.err = syscall.Write(int(fd), w.b)
	return true // never wait for the socket: a full one is the writer's
}

// rawConnOf is nc's raw socket for non-blocking writes; nil when nc has
// none (an in-memory pipe).
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// tryWrite writes b to rc once, without waiting: n is what the socket
// took, 0 when it was full or the write failed (the writer then writes,
// waiting, and fails on a broken socket).
func (w *rawWriter) tryWrite(rc syscall.RawConn, b []byte) int {
	w.b, w.n, w.err = b, 0, nil
	err := rc.Write(w.fn)
	w.b = nil
	if err != nil || w.err != nil || w.n < 0 {
		return 0
	}
	return w.n
}
