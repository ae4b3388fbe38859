package metric

import "unicode/utf8"

// MaxValueBytes is the most bytes a dimension value keeps. 256 keeps every
// realistic path and prop value whole, and every host name (at most 253
// bytes), so only hostile or broken values are cut; it bounds what one value
// costs in a bucket hash, a top-K set and a delta point (a 2 KB path would
// cost eight times as much in each).
const MaxValueBytes = 256

// CutMark ends a value that CutValue shortened, so a reader sees that the
// value was longer. It is "…" (U+2026, 3 bytes in UTF-8).
const CutMark = "\u2026"

// CutValue returns v when it has at most MaxValueBytes bytes, and otherwise
// its longest prefix that ends on a UTF-8 character boundary and leaves room
// for CutMark, followed by CutMark: at most MaxValueBytes bytes in all. It is
// a function of v alone, so live aggregation and replay cut alike; long
// values that share their first 253 bytes count as one.
func CutValue(v string) string {
	if len(v) <= MaxValueBytes {
		return v
	}
	n := MaxValueBytes - len(CutMark)
	// Step back over continuation bytes (at most three for valid UTF-8;
	// invalid input stops after three too, still deterministically).
	for i := 0; i < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(v[n]); i++ {
		n--
	}
	return v[:n] + CutMark
}
