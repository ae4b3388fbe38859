package event

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// maxTS is 3000-01-01T00:00:00Z in ms: later times are garbage, not events.
const maxTS = 32503680000000

// Validate checks the client fields of e against lim (zero fields of lim
// mean defaults). The error is a *FieldError naming the field and what is
// allowed. TS 0 means "not sent".
func (e *Event) Validate(lim Limits) error {
	return e.validate(lim, false)
}

// ValidateFreeType is Validate for events whose type is the name the
// sender chose, as Plausible's are: those of /api/event and of
// /v1/collect, where Pulse's tracker sends Plausible's names too. The
// type is any IsEventName ("Outbound Link: Click", "404"), not only IsName.
// Everything downstream (records, aggregates, archive, queries) takes
// such a type as it is.
func (e *Event) ValidateFreeType(lim Limits) error {
	return e.validate(lim, true)
}

func (e *Event) validate(lim Limits, freeType bool) error {
	lim = lim.WithDefaults()
	if len(e.ID) == 0 || len(e.ID) > 64 {
		return &FieldError{Field: "id", Msg: "required, 1 to 64 bytes"}
	}
	if msg := checkText(e.ID, true); msg != "" {
		return &FieldError{Field: "id", Msg: msg}
	}
	if !IsName(e.Site) {
		return &FieldError{Field: "site", Msg: "must match [a-z0-9_.-]{1,64}"}
	}
	switch {
	case freeType && !IsEventName(e.Type):
		return &FieldError{Field: "type", Msg: "required, 1 to " + strconv.Itoa(MaxEventName) + " bytes of UTF-8 without control characters"}
	case !freeType && !IsName(e.Type):
		return &FieldError{Field: "type", Msg: "must match [a-z0-9_.-]{1,64}"}
	}
	if e.TS < 0 || e.TS >= maxTS {
		return &FieldError{Field: "ts", Msg: "must be ms since the epoch, from 0 to before the year 3000"}
	}
	if msg := checkString(e.URL, lim.MaxURL); msg != "" {
		return &FieldError{Field: "url", Msg: msg}
	}
	if msg := checkString(e.Ref, lim.MaxURL); msg != "" {
		return &FieldError{Field: "ref", Msg: msg}
	}
	if msg := checkString(e.UID, lim.MaxUID); msg != "" {
		return &FieldError{Field: "uid", Msg: msg}
	}
	if len(e.Props) > lim.MaxProps {
		return &FieldError{Field: "props", Msg: "more than " + strconv.Itoa(lim.MaxProps) + " keys"}
	}
	for k, v := range e.Props {
		if msg := checkProp(k, v, lim); msg != "" {
			// The field name is built only for the error: it allocates.
			return &FieldError{Field: propField(k), Msg: msg}
		}
	}
	return nil
}

func checkProp(k string, v any, lim Limits) string {
	if len(k) == 0 || len(k) > lim.MaxPropKey {
		return "key must be 1 to " + strconv.Itoa(lim.MaxPropKey) + " bytes"
	}
	if msg := checkText(k, true); msg != "" {
		return msg
	}
	switch v := v.(type) {
	case string:
		return checkString(v, lim.MaxPropValue)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) || v > MaxPropNumber || v < -MaxPropNumber {
			return "number out of range (magnitude at most 1e15)"
		}
	case bool:
	default:
		return "must be a string, number or bool"
	}
	return ""
}

// IsName reports whether s is a valid site or type: [a-z0-9_.-]{1,64}.
func IsName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// MaxEventName is the longest event name of a foreign format, in bytes
// (Plausible's bound on its event names).
const MaxEventName = 120

// IsEventName reports whether s is a valid event type of a foreign format:
// 1 to MaxEventName bytes of valid UTF-8 without control characters (so
// without the \x1f that separates fields in aggregate keys).
func IsEventName(s string) bool {
	return len(s) > 0 && len(s) <= MaxEventName && checkText(s, true) == ""
}

func checkString(s string, max int) string {
	if len(s) > max {
		return "longer than " + strconv.Itoa(max) + " bytes"
	}
	return checkText(s, false)
}

// checkText rejects invalid UTF-8 and NUL bytes, and with noControl every
// control character: identifiers end up in Redis keys and log lines. It
// returns what is wrong, or "".
func checkText(s string, noControl bool) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == 0 {
				return "NUL bytes are not allowed"
			}
			if noControl && (c < 0x20 || c == 0x7f) {
				return "control characters are not allowed"
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return "invalid UTF-8"
		}
		if noControl && r < 0xa0 {
			return "control characters are not allowed"
		}
		i += size
	}
	return ""
}
