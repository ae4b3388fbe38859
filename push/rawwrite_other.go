//go:build !unix

package push

import (
	"net"
	"syscall"
)

// rawWriter is a stub where non-blocking socket writes are not done: every
// delta goes through the connection's writer.
type rawWriter struct{}

func newRawWriter() *rawWriter { return &rawWriter{} }

func rawConnOf(net.Conn) syscall.RawConn { return nil }

func (*rawWriter) tryWrite(syscall.RawConn, []byte) int { return 0 }
