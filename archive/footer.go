package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// checkFooter walks a Parquet file's footer before the Parquet library
// decodes it. The library trusts the footer's length and every Thrift list
// length it finds there and allocates them up front, so a few damaged bytes
// can ask for gigabytes: the runtime then dies with "out of memory", which
// no recover catches. The walk needs no schema: in Thrift's compact protocol
// every value says its own type, so it can check that each length fits in
// the bytes that are left and that nesting stays shallow.
func checkFooter(r io.ReaderAt, size int64) error {
	const magic = "PAR1"
	if size < 12 {
		return fmt.Errorf("decode parquet: %d bytes is too short for a Parquet file", size)
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return fmt.Errorf("decode parquet: read footer length: %w", err)
	}
	if string(tail[4:]) != magic {
		return fmt.Errorf("decode parquet: footer magic %q, want %q (encrypted footers are not archive objects)", tail[4:], magic)
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n == 0 || n > size-12 {
		return fmt.Errorf("decode parquet: footer of %d bytes in a file of %d", n, size)
	}
	footer := make([]byte, n)
	if _, err := r.ReadAt(footer, size-8-n); err != nil {
		return fmt.Errorf("decode parquet: read footer: %w", err)
	}
	w := thriftWalker{b: footer}
	if err := w.structure(0); err != nil {
		return fmt.Errorf("decode parquet: footer at byte %d of %d: %w", w.off, n, err)
	}
	return nil
}

// Thrift compact protocol type codes.
const (
	ctTrue   = 1
	ctFalse  = 2
	ctByte   = 3
	ctI16    = 4
	ctI32    = 5
	ctI64    = 6
	ctDouble = 7
	ctBinary = 8
	ctList   = 9
	ctSet    = 10
	ctMap    = 11
	ctStruct = 12
)

// maxThriftDepth is far deeper than Parquet's metadata goes (about 6) and
// far shallower than anything that could exhaust a stack.
const maxThriftDepth = 32

var errTruncated = errors.New("truncated")

type thriftWalker struct {
	b   []byte
	off int
}

func (w *thriftWalker) left() int { return len(w.b) - w.off }

func (w *thriftWalker) byte() (byte, error) {
	if w.off >= len(w.b) {
		return 0, errTruncated
	}
	c := w.b[w.off]
	w.off++
	return c, nil
}

func (w *thriftWalker) uvarint() (uint64, error) {
	v, k := binary.Uvarint(w.b[w.off:])
	if k <= 0 {
		return 0, errors.New("bad varint")
	}
	w.off += k
	return v, nil
}

func (w *thriftWalker) skip(n uint64) error {
	if n > uint64(w.left()) {
		return fmt.Errorf("length %d with %d bytes left", n, w.left())
	}
	w.off += int(n)
	return nil
}

func (w *thriftWalker) structure(depth int) error {
	if depth > maxThriftDepth {
		return fmt.Errorf("nested deeper than %d", maxThriftDepth)
	}
	for {
		h, err := w.byte()
		if err != nil {
			return err
		}
		if h == 0 { // stop
			return nil
		}
		if h>>4 == 0 { // long form: the field id follows as a zigzag varint
			if _, err := w.uvarint(); err != nil {
				return err
			}
		}
		typ := h & 0x0f
		if typ == ctTrue || typ == ctFalse { // a bool field's value is its type
			continue
		}
		if err := w.value(typ, depth); err != nil {
			return err
		}
	}
}

func (w *thriftWalker) value(typ byte, depth int) error {
	switch typ {
	case ctTrue, ctFalse, ctByte: // one byte inside a list or map
		return w.skip(1)
	case ctI16, ctI32, ctI64:
		_, err := w.uvarint()
		return err
	case ctDouble:
		return w.skip(8)
	case ctBinary:
		n, err := w.uvarint()
		if err != nil {
			return err
		}
		return w.skip(n)
	case ctList, ctSet:
		h, err := w.byte()
		if err != nil {
			return err
		}
		n := uint64(h >> 4)
		if n == 15 {
			if n, err = w.uvarint(); err != nil {
				return err
			}
		}
		return w.elements(n, h&0x0f, 0, false, depth)
	case ctMap:
		n, err := w.uvarint()
		if err != nil || n == 0 {
			return err
		}
		kv, err := w.byte()
		if err != nil {
			return err
		}
		return w.elements(n, kv>>4, kv&0x0f, true, depth)
	case ctStruct:
		return w.structure(depth + 1)
	default:
		return fmt.Errorf("unknown type %d", typ)
	}
}

// elements walks n list elements of type a, or n map entries of types a and
// b. Every element takes at least one byte, so a count larger than the
// bytes left is a lie told before anything is allocated.
func (w *thriftWalker) elements(n uint64, a, b byte, isMap bool, depth int) error {
	if n > uint64(w.left()) {
		return fmt.Errorf("%d elements with %d bytes left", n, w.left())
	}
	for i := uint64(0); i < n; i++ {
		if err := w.value(a, depth+1); err != nil {
			return err
		}
		if isMap {
			if err := w.value(b, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
