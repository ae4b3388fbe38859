package kinesis

import (
	"fmt"
	"strconv"
)

// Positions. A user record's Seq is its Kinesis sequence number followed by
// six decimal digits: the index of the user record inside its aggregated
// Kinesis record, or 999999 for a plain record and for the last user record
// of an aggregated one. So every Seq this package hands out is a decimal
// string that stream.CompareSeq orders exactly (Seq = kinesisSeq*10^6 + sub),
// plain and aggregated records mix in one shard, and resuming is exact:
//
//   - after a "...999999" position Read asks for AFTER_SEQUENCE_NUMBER of the
//     Kinesis record, as for any plain record;
//   - after sub-record i of an aggregated record it asks for
//     AT_SEQUENCE_NUMBER and drops sub-records 0..i of that record.
//
// A plain Kinesis sequence number (no suffix) is not a position of this
// package; pass positions back as Read and Put returned them.
const (
	subDigits = 6
	lastSub   = 999_999
	maxSub    = 100_000 // cap on records per aggregate we pack; decoding allows up to lastSub-1
)

func position(seq string, sub int, last bool) string {
	if last {
		sub = lastSub
	}
	return fmt.Sprintf("%s%0*d", seq, subDigits, sub)
}

// parsePosition splits a position into the Kinesis sequence number and the
// sub-record index (lastSub when the whole Kinesis record is consumed).
func parsePosition(p string) (seq string, sub int, err error) {
	if len(p) <= subDigits || p[0] == '0' {
		return "", 0, fmt.Errorf("position %q: not a stream/kinesis position", p)
	}
	for _, c := range []byte(p) {
		if c < '0' || c > '9' {
			return "", 0, fmt.Errorf("position %q: not a stream/kinesis position", p)
		}
	}
	cut := len(p) - subDigits
	sub, err = strconv.Atoi(p[cut:])
	if err != nil {
		return "", 0, fmt.Errorf("position %q: %w", p, err)
	}
	return p[:cut], sub, nil
}
