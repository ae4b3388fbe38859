//go:build !unix

package local

import (
	"fmt"
	"os"
)

// lockDir opens the lock file; without flock the directory is not guarded
// against a second writer.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	return f, nil
}
