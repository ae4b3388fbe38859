package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"time"
)

// child is a server subprocess the bench measures.
type child struct {
	cmd  *exec.Cmd
	addr string
}

// startChild runs bin with args and --addr on a free loopback port, and
// waits until healthPath answers below 500. Its output is discarded.
func startChild(ctx context.Context, bin, healthPath string, args ...string) (*child, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.CommandContext(ctx, bin, append(args, "--addr", addr)...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %v: %w", args, err)
	}
	c := &child{cmd: cmd, addr: addr}
	if err := waitHTTP("http://"+addr+healthPath, 30*time.Second, func(code int) bool { return code < 500 }); err != nil {
		c.stop()
		return nil, fmt.Errorf("%v did not start: %w", args, err)
	}
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop interrupts the child, as an operator would, and kills it when it
// has not exited 20 s later.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// waitHTTP polls url until healthy accepts its status, for at most
// timeout.
func waitHTTP(url string, timeout time.Duration, healthy func(status int) bool) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if healthy(resp.StatusCode) {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not healthy after %s: %w", url, timeout, last)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
