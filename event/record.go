package event

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Marshal encodes e as a stream record: JSON with the field names of
// Event, props keys sorted, readable by encoding/json and any other tool.
// It is hand-written because it runs once per event on the ingest path.
func Marshal(e *Event) ([]byte, error) {
	return AppendJSON(make([]byte, 0, 160+len(e.URL)+len(e.Ref)+32*len(e.Props)), e)
}

// AppendJSON appends the record encoding of e to b.
func AppendJSON(b []byte, e *Event) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"site":`...)
	b = appendString(b, e.Site)
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, e.TS, 10)
	if e.URL != "" {
		b = append(b, `,"url":`...)
		b = appendString(b, e.URL)
	}
	if e.Ref != "" {
		b = append(b, `,"ref":`...)
		b = appendString(b, e.Ref)
	}
	if e.UID != "" {
		b = append(b, `,"uid":`...)
		b = appendString(b, e.UID)
	}
	if len(e.Props) > 0 {
		b = append(b, `,"props":{`...)
		var kb [32]string
		keys := kb[:0]
		for k := range e.Props {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			switch v := e.Props[k].(type) {
			case string:
				b = appendString(b, v)
			case float64:
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, fmt.Errorf("marshal event %s: props %q: unsupported number %v", e.ID, k, v)
				}
				b = appendFloat(b, v)
			case bool:
				b = strconv.AppendBool(b, v)
			default:
				return nil, fmt.Errorf("marshal event %s: props %q: unsupported type %T", e.ID, k, v)
			}
		}
		b = append(b, '}')
	}
	b = append(b, `,"rt":`...)
	b = strconv.AppendInt(b, e.RT, 10)
	if e.Path != "" {
		b = append(b, `,"path":`...)
		b = appendString(b, e.Path)
	}
	if e.RefHost != "" {
		b = append(b, `,"ref_host":`...)
		b = appendString(b, e.RefHost)
	}
	if e.Device != "" {
		b = append(b, `,"device":`...)
		b = appendString(b, e.Device)
	}
	if e.Bot {
		b = append(b, `,"bot":true`...)
	}
	for f := fSource; f <= fCountry; f++ {
		if v := *visitField(&e.Visit, f); v != "" {
			b = append(b, ',', '"')
			b = append(b, fieldNames[f]...)
			b = append(b, '"', ':')
			b = appendString(b, v)
		}
	}
	return append(b, '}'), nil
}

// Unmarshal decodes a stream record written by Marshal (or any JSON object
// of the same shape). It checks the JSON and the field types, not the
// limits: records were validated at ingest. The string fields share one
// copy of data; strings.Clone a field to keep it long without the rest.
func Unmarshal(data []byte) (Event, error) {
	var e Event
	p := parser{b: data, s: string(data), record: true, lim: Limits{MaxProps: math.MaxInt}.WithDefaults()}
	p.lim.MaxDepth = 64
	fe, err := p.event(&e)
	if err == nil {
		p.ws()
		if p.i != len(p.b) {
			err = p.synErr("data after the object")
		}
	}
	if err != nil {
		return Event{}, fmt.Errorf("decode event record: %w", err)
	}
	if fe != nil {
		return Event{}, fmt.Errorf("decode event record: %w", fe)
	}
	return e, nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// with encoding/json, so the output is always valid JSON.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but end lines in JavaScript.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendFloat formats like encoding/json: shortest representation, plain
// notation for ordinary magnitudes, exponent for tiny and huge ones.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
