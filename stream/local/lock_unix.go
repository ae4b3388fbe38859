//go:build unix

package local

import (
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive flock on path so that two processes (or two
// Logs in one process) never write the same directory. The lock goes with
// the file's close, or with the process.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("directory in use by another log (%s): %w", path, err)
	}
	return f, nil
}
