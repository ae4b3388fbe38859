package local

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The journal is what makes a group commit durable: one file for all
// shards, written with one write and fsync'd with one fdatasync per commit,
// where fsyncing every shard file that got records costs one fdatasync per
// shard. An fdatasync of a block written over flushes data only, while one
// of a file that grows also commits its size in the file system journal:
// docs/benchmarks.md ("Ingest, through the durable path") has the figures
// (140 µs of CPU for one against 790 µs for four growing shard files) and
// BenchmarkPut (bench_test.go) reports CPU per event and events per
// fdatasync. The shard segments get the same bytes in the same commit but
// are fsync'd only when the journal fills (in the background, see
// Log.checkpoint), when a segment is sealed, and on Close;
// until then a journal file holds every record that is not yet durable in
// its segment, and Open puts those back.
//
// A journal file is named by its generation, DIR/journal-GEN.wal. There
// are at most two: the one being written, and the one before, kept until
// the segments it covers are fsync'd and then reused for the next
// generation. It is a sequence of frames, little endian:
//
//	length   uint32  bytes of payload
//	checksum uint32  CRC-32C of gen and payload
//	gen      uint64  the file's generation
//	payload  chunks: shard uint32, size uint32, then size bytes of records
//	         encoded exactly as in the shard's segments
//
// The first frame that is short, fails its checksum or carries another
// generation ends the file: past it are zeros (a new file is extended by
// writing zeros ahead, so that an fdatasync after a commit flushes data
// only, never a size change) or frames of an older generation (a file
// whose records are all in the segments is reused: renamed to a new
// generation and overwritten from the start, which again changes no size).
const (
	journalPrefix   = "journal-"
	journalExt      = ".wal"
	frameHeaderSize = 16
	chunkHeaderSize = 8
	// zeroChunk is how far ahead of its end a growing journal is extended.
	zeroChunk = 1 << 20
	// maxFramePayload bounds a frame: the writer cuts frames at flushBytes,
	// plus one record of at most maxRecordBytes and the chunk headers.
	maxFramePayload = 64 << 20
	// minJournalBytes leaves room for several of the largest frames.
	minJournalBytes = 8 << 20
)

// journal is the writer's open journal file. Only the writer goroutine
// uses it.
type journal struct {
	dir    string
	path   string
	f      *os.File
	gen    uint64
	pos    int64 // where the next frame goes
	zeroed int64 // bytes of the file that exist (written, zeros or frames)
	limit  int64 // recycle past this size
	zeros  []byte
}

func journalName(gen uint64) string {
	return fmt.Sprintf("%s%020d%s", journalPrefix, gen, journalExt)
}

// listJournals returns the generations of the journal files in dir, sorted.
func listJournals(dir string) ([]uint64, error) {
	return listNumbered(dir, "journals", journalPrefix, journalExt)
}

// appendFrameHeader starts a frame at the end of b; finishFrame fills it in.
func appendFrameHeader(b []byte) []byte {
	return append(b, make([]byte, frameHeaderSize)...)
}

func finishFrame(frame []byte, gen uint64) {
	binary.LittleEndian.PutUint32(frame, uint32(len(frame)-frameHeaderSize))
	binary.LittleEndian.PutUint64(frame[8:], gen)
	binary.LittleEndian.PutUint32(frame[4:], crc32.Checksum(frame[8:], castagnoli))
}

// appendChunk adds the records of one shard to a frame.
func appendChunk(b []byte, shard int, records []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(shard))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(records)))
	return append(b, records...)
}

// readFrames calls fn with the payload of every frame of generation gen
// in r, in order, and stops at the first frame that is short, fails its
// checksum or belongs to another generation: the end of what was written.
// Only an error from fn or from reading is returned.
func readFrames(r io.Reader, gen uint64, fn func(payload []byte) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var hdr [frameHeaderSize]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return err
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n == 0 || n > maxFramePayload || binary.LittleEndian.Uint64(hdr[8:]) != gen {
			return nil
		}
		if cap(buf) < 8+int(n) {
			buf = make([]byte, 8+int(n))
		}
		buf = buf[:8+int(n)]
		copy(buf, hdr[8:])
		if _, err := io.ReadFull(br, buf[8:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return err
		}
		if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
			return nil
		}
		if err := fn(buf[8:]); err != nil {
			return err
		}
	}
}

// forChunks calls fn with each shard chunk of a frame's payload. A payload
// whose checksum matched but whose chunks do not add up was written wrong:
// that is corruption, not a torn write.
func forChunks(payload []byte, fn func(shard int, records []byte) error) error {
	for len(payload) > 0 {
		if len(payload) < chunkHeaderSize {
			return fmt.Errorf("%w: journal chunk header cut short", ErrCorrupt)
		}
		shard := int(binary.LittleEndian.Uint32(payload))
		n := binary.LittleEndian.Uint32(payload[4:])
		if uint64(n) > uint64(len(payload)-chunkHeaderSize) {
			return fmt.Errorf("%w: journal chunk of %d bytes in %d", ErrCorrupt, n, len(payload)-chunkHeaderSize)
		}
		if err := fn(shard, payload[chunkHeaderSize:chunkHeaderSize+int(n)]); err != nil {
			return err
		}
		payload = payload[chunkHeaderSize+int(n):]
	}
	return nil
}

// forRecords calls fn with each record of a chunk.
func forRecords(records []byte, fn func(raw []byte, rec rawRecord) error) error {
	for len(records) > 0 {
		rec, n, err := decodeRecord(records)
		if err != nil {
			if errors.Is(err, errShort) {
				err = fmt.Errorf("%w: %w", ErrCorrupt, err)
			}
			return fmt.Errorf("journal record: %w", err)
		}
		if err := fn(records[:n], rec); err != nil {
			return err
		}
		records = records[n:]
	}
	return nil
}

// createJournal makes a new, empty journal file of generation gen and
// extends it with the first zeros.
func createJournal(dir string, gen uint64, limit int64) (*journal, error) {
	path := filepath.Join(dir, journalName(gen))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create journal: %w", err)
	}
	j := &journal{dir: dir, path: path, f: f, gen: gen, limit: limit}
	if err := j.extend(zeroChunk); err != nil {
		f.Close()
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

// openJournal opens the journal file of generation gen for reuse.
func openJournal(dir string, gen uint64, limit int64) (*journal, error) {
	path := filepath.Join(dir, journalName(gen))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat journal: %w", err)
	}
	return &journal{dir: dir, path: path, f: f, gen: gen, limit: limit, zeroed: st.Size()}, nil
}

// full says whether a frame of n bytes should go to a new generation.
func (j *journal) full(n int) bool {
	return j.pos > 0 && j.pos+int64(n) > j.limit
}

// write writes one finished frame at the end of the journal, extending the
// file with zeros first when the frame would pass its end.
func (j *journal) write(frame []byte) error {
	if need := j.pos + int64(len(frame)); need > j.zeroed {
		if err := j.extend(max(zeroChunk, need-j.zeroed)); err != nil {
			return err
		}
	}
	if _, err := j.f.WriteAt(frame, j.pos); err != nil {
		return fmt.Errorf("write %s: %w", j.path, err)
	}
	j.pos += int64(len(frame))
	return nil
}

// extend writes n zero bytes past the end of the file and fsyncs them with
// the new size, once, so that the commits that land there later do not
// each pay for a size change.
func (j *journal) extend(n int64) error {
	if j.zeros == nil {
		j.zeros = make([]byte, zeroChunk)
	}
	for done := int64(0); done < n; {
		k := min(int64(len(j.zeros)), n-done)
		if _, err := j.f.WriteAt(j.zeros[:k], j.zeroed+done); err != nil {
			return fmt.Errorf("extend %s: %w", j.path, err)
		}
		done += k
	}
	if err := datasync(j.f); err != nil {
		return fmt.Errorf("sync %s: %w", j.path, err)
	}
	j.zeroed += n
	return nil
}

// reuse renames the journal file to generation gen and writes it again
// from the start; every record it held is durable in its segment.
func (j *journal) reuse(gen uint64) error {
	path := filepath.Join(j.dir, journalName(gen))
	if err := os.Rename(j.path, path); err != nil {
		return fmt.Errorf("recycle journal: %w", err)
	}
	j.path = path
	j.gen = gen
	j.pos = 0
	// Until the rename is durable a crash finds the old name, whose frames
	// Open skips as already in the segments; after it, the old frames carry
	// an old generation and end the scan at once.
	return syncDir(j.dir)
}

func (j *journal) sync() error {
	if err := datasync(j.f); err != nil {
		return fmt.Errorf("sync %s: %w", j.path, err)
	}
	return nil
}

func (j *journal) close() error { return j.f.Close() }
