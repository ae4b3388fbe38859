package metric

import (
	"strconv"
	"strings"
)

// Sum and avg metrics add numbers that people read as decimals (prices:
// 19.99), and a float sum of those depends on the order of its terms, so
// live aggregation and replay, which batch events differently, would
// disagree in the last digits. They are held instead as integers in fixed
// point: a value is scaled by 10^Decimals and rounded once, as a function of
// the value alone, and every later step adds integers exactly.
//
// The store keeps sums where they are added as doubles (Redis Lua), exact
// up to 2^53. Bounds, with D the metric's decimals:
//
//   - one value: |v| <= MaxSumValue (1e9) units, so |v|*10^D <= 1e15 < 2^53;
//     a larger value, like one that is no number, adds nothing;
//   - one bucket (and one dimension value in it): |sum| <= MaxScaled, that is
//     9,007,199,254.740991 units at 6 decimals and 90,071,992,547,409.91
//     at the default 2. A sum that would pass it stays at the bound
//     (saturates) and the store counts it; the number is then a floor.
const (
	DefaultDecimals = 2
	MaxDecimals     = 6
	MaxSumValue     = 1_000_000_000
	MaxScaled       = 1<<53 - 1
)

// PropPrefix starts a dimension or field name that names a prop:
// "props.plan" is the prop plan.
const PropPrefix = "props."

var pow10 = [MaxDecimals + 1]int64{1, 10, 100, 1_000, 10_000, 100_000, 1_000_000}

// Pow10 returns 10^d for 0 <= d <= MaxDecimals.
func Pow10(d int) int64 { return pow10[d] }

// Scaled returns a prop value as an integer of 10^-decimals units: a JSON
// number, or a string holding a plain decimal number ("19.99", "-3", as
// the pixel and the Plausible format send every prop). Digits past decimals
// are rounded half away from zero. ok is false for any other value and for
// |v| > MaxSumValue.
func Scaled(v any, decimals int) (n int64, ok bool) {
	switch v := v.(type) {
	case float64:
		// The shortest decimal that reads back as v: what the sender wrote
		// for any number of up to 15 significant digits.
		return scaleDecimal(strconv.FormatFloat(v, 'f', -1, 64), decimals)
	case string:
		if len(v) > 64 {
			return 0, false
		}
		return scaleDecimal(v, decimals)
	}
	return 0, false
}

func scaleDecimal(s string, decimals int) (int64, bool) {
	if decimals < 0 || decimals > MaxDecimals {
		return 0, false
	}
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	ip, frac, dot := strings.Cut(s, ".")
	if ip == "" || (dot && frac == "") || !digits(ip) || !digits(frac) {
		return 0, false
	}
	ip = strings.TrimLeft(ip, "0")
	if len(ip) > 10 {
		return 0, false
	}
	var n int64
	if ip != "" {
		n, _ = strconv.ParseInt(ip, 10, 64)
	}
	n *= pow10[decimals]
	for i := range decimals {
		n += int64(digitAt(frac, i)) * pow10[decimals-1-i]
	}
	if digitAt(frac, decimals) >= 5 {
		n++
	}
	if n > MaxSumValue*pow10[decimals] {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func digitAt(s string, i int) int {
	if i < len(s) {
		return int(s[i] - '0')
	}
	return 0
}

// AddScaled adds two sums of at most MaxScaled in magnitude, saturating at
// ±MaxScaled as the store does.
func AddScaled(a, b int64) int64 {
	return min(max(a+b, -MaxScaled), MaxScaled)
}

// FormatScaled writes n units of 10^-decimals as a decimal number, without
// trailing zeros: FormatScaled(6498, 2) is "64.98". It is exact, and a valid
// JSON number.
func FormatScaled(n int64, decimals int) string {
	neg := n < 0
	if neg {
		n = -n
	}
	p := pow10[decimals]
	s := strconv.FormatInt(n/p, 10)
	if r := n % p; r != 0 {
		f := strconv.FormatInt(r+p, 10)[1:] // zero-padded to decimals digits
		s += "." + strings.TrimRight(f, "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}
