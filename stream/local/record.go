package local

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record layout; see the package doc.
const (
	headerSize  = 8  // length + checksum
	fixedBody   = 18 // seq + arrival + keylen
	maxKeyBytes = 256
	maxDataSize = 1 << 20
	maxBodySize = fixedBody + maxKeyBytes + maxDataSize
	// maxRecordBytes is the largest encoded record.
	maxRecordBytes = headerSize + maxBodySize
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrCorrupt is wrapped by errors about records that fail their checks
	// where a torn write cannot explain them.
	ErrCorrupt = errors.New("local: corrupt record")
	// errShort says the bytes end inside a record: a torn tail when it is
	// the end of the active segment.
	errShort = errors.New("local: truncated record")
)

// rawRecord is a decoded record; Key and Data alias the decoded buffer.
type rawRecord struct {
	Seq       uint64
	ArrivalMs int64
	Key       []byte
	Data      []byte
}

func recordSize(key string, data []byte) int {
	return headerSize + fixedBody + len(key) + len(data)
}

// appendRecord encodes one record at the end of b.
func appendRecord(b []byte, seq uint64, arrivalMs int64, key string, data []byte) []byte {
	start := len(b)
	bodyLen := fixedBody + len(key) + len(data)
	b = binary.LittleEndian.AppendUint32(b, uint32(bodyLen))
	b = binary.LittleEndian.AppendUint32(b, 0) // checksum, filled below
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.LittleEndian.AppendUint64(b, uint64(arrivalMs))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, key...)
	b = append(b, data...)
	sum := crc32.Checksum(b[start+headerSize:], castagnoli)
	binary.LittleEndian.PutUint32(b[start+4:], sum)
	return b
}

// recordLen reads the total size of the record starting at b from its
// length field: errShort when b is shorter than the header, ErrCorrupt
// when the length is out of bounds.
func recordLen(b []byte) (int, error) {
	if len(b) < headerSize {
		return 0, errShort
	}
	n := binary.LittleEndian.Uint32(b)
	if n < fixedBody || n > maxBodySize {
		return 0, fmt.Errorf("%w: length %d out of bounds", ErrCorrupt, n)
	}
	return headerSize + int(n), nil
}

// decodeRecord decodes the record at the start of b and returns it with
// its encoded size. It fails with errShort when b ends inside the record
// and with ErrCorrupt when the record fails its checks. It does not check
// the sequence number against its neighbours; the caller does.
func decodeRecord(b []byte) (rawRecord, int, error) {
	n, err := recordLen(b)
	if err != nil {
		return rawRecord{}, 0, err
	}
	if len(b) < n {
		return rawRecord{}, 0, errShort
	}
	body := b[headerSize:n:n]
	if sum := crc32.Checksum(body, castagnoli); sum != binary.LittleEndian.Uint32(b[4:]) {
		return rawRecord{}, 0, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	keyLen := int(binary.LittleEndian.Uint16(body[16:]))
	if keyLen > maxKeyBytes || fixedBody+keyLen > len(body) {
		return rawRecord{}, 0, fmt.Errorf("%w: key length %d out of bounds", ErrCorrupt, keyLen)
	}
	if len(body)-fixedBody-keyLen > maxDataSize {
		return rawRecord{}, 0, fmt.Errorf("%w: data too long", ErrCorrupt)
	}
	r := rawRecord{
		Seq:       binary.LittleEndian.Uint64(body),
		ArrivalMs: int64(binary.LittleEndian.Uint64(body[8:])),
		Key:       body[fixedBody : fixedBody+keyLen : fixedBody+keyLen],
		Data:      body[fixedBody+keyLen:],
	}
	if r.Seq == 0 {
		return rawRecord{}, 0, fmt.Errorf("%w: sequence number 0", ErrCorrupt)
	}
	return r, n, nil
}
