package redistest

import "syscall"

// Pause stops the server with SIGSTOP: its port still accepts connections
// (the kernel completes the handshakes) but nothing answers, as with a
// Redis host that hangs or a network partition, unlike Kill's refused
// connections. Resume undoes it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT); it then answers what clients
// sent meanwhile.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}
