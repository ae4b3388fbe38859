package local

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync makes appended data durable with fdatasync: it flushes the data
// and the metadata needed to read it back (the file size), but not the
// timestamps fsync would also write, which cost a journal commit each.
// The segment's directory entry is made durable once, when it is created.
func datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}
