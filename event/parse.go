package event

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// parser is a single-pass JSON decoder specialised for Event. It avoids
// reflection and the tokenise-then-decode double pass of encoding/json,
// which matters on the ingest hot path. It is not safe for concurrent use.
type parser struct {
	b       []byte
	s       string // the same bytes as b, as a string: unescaped string values are substrings of it
	i       int
	lim     Limits
	record  bool   // decode server fields too (stream records), not only client fields
	scratch []byte // unescaped string content; valid until the next str call
	escaped bool   // the last str had escapes
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *parser) ws() {
	for p.i < len(p.b) && isSpace(p.b[p.i]) {
		p.i++
	}
}

func (p *parser) synErr(msg string) error { return &syntaxError{off: p.i, msg: msg} }

func (p *parser) unexpected() error {
	if p.i >= len(p.b) {
		return p.synErr("unexpected end of input")
	}
	c := p.b[p.i]
	if c < 0x20 || c >= 0x7f {
		return p.synErr("unexpected byte 0x" + strconv.FormatUint(uint64(c), 16))
	}
	return p.synErr("unexpected character '" + string(rune(c)) + "'")
}

// expect consumes c after optional white space.
func (p *parser) expect(c byte) error {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != c {
		return p.unexpected()
	}
	p.i++
	return nil
}

// str parses the JSON string at p.i. The result aliases p.b when the
// string has no escapes, else p.scratch; either way it is valid only until
// the next call, so callers copy it (string(...)) before parsing on.
func (p *parser) str() ([]byte, error) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, p.unexpected()
	}
	p.i++
	p.escaped = false
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, nil
		case c == '\\':
			return p.strEscaped(start)
		case c < 0x20:
			return nil, p.synErr("control byte 0x" + strconv.FormatUint(uint64(c), 16) + " in string (must be escaped; NUL is not allowed)")
		}
		p.i++
	}
	return nil, p.synErr("unterminated string")
}

func (p *parser) strEscaped(start int) ([]byte, error) {
	p.escaped = true
	out := append(p.scratch[:0], p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			p.scratch = out
			return out, nil
		case c < 0x20:
			return nil, p.synErr("control byte 0x" + strconv.FormatUint(uint64(c), 16) + " in string (must be escaped; NUL is not allowed)")
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.b) {
			return nil, p.synErr("unterminated string")
		}
		e := p.b[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return nil, p.synErr("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// A pair makes one rune; a lone half becomes U+FFFD, as
				// encoding/json does, and what follows it is read anew.
				paired := false
				if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
					save := p.i
					p.i += 2
					r2, ok := p.hex4()
					if !ok {
						return nil, p.synErr("bad \\u escape")
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r, paired = d, true
					} else {
						p.i = save
					}
				}
				if !paired {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			p.i--
			return nil, p.synErr("bad escape \\" + string(rune(e)))
		}
	}
	return nil, p.synErr("unterminated string")
}

// strVal parses the JSON string at p.i into a string. Without escapes it
// is a substring of p.s, so a batch of events shares one copy of the body
// instead of allocating every field.
func (p *parser) strVal() (string, error) {
	start := p.i + 1
	b, err := p.str()
	if err != nil {
		return "", err
	}
	if !p.escaped && len(p.s) == len(p.b) {
		return p.s[start : start+len(b)], nil
	}
	return string(b), nil
}

func (p *parser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.i += 4
	return r, true
}

// num scans a JSON number and reports whether it has neither fraction nor
// exponent.
func (p *parser) num() (start, end int, isInt bool, err error) {
	b, n := p.b, len(p.b)
	start = p.i
	if p.i < n && b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < n && b[p.i] == '0':
		p.i++
	case p.i < n && '1' <= b[p.i] && b[p.i] <= '9':
		for p.i < n && '0' <= b[p.i] && b[p.i] <= '9' {
			p.i++
		}
	default:
		return 0, 0, false, p.unexpected()
	}
	isInt = true
	if p.i < n && b[p.i] == '.' {
		isInt = false
		p.i++
		if p.i >= n || b[p.i] < '0' || b[p.i] > '9' {
			return 0, 0, false, p.unexpected()
		}
		for p.i < n && '0' <= b[p.i] && b[p.i] <= '9' {
			p.i++
		}
	}
	if p.i < n && (b[p.i] == 'e' || b[p.i] == 'E') {
		isInt = false
		p.i++
		if p.i < n && (b[p.i] == '+' || b[p.i] == '-') {
			p.i++
		}
		if p.i >= n || b[p.i] < '0' || b[p.i] > '9' {
			return 0, 0, false, p.unexpected()
		}
		for p.i < n && '0' <= b[p.i] && b[p.i] <= '9' {
			p.i++
		}
	}
	return start, p.i, isInt, nil
}

// lit consumes the literal true, false or null.
func (p *parser) lit(word string) error {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return p.unexpected()
	}
	p.i += len(word)
	return nil
}

// skip consumes one JSON value of any kind. depth is the nesting level of
// the value's container (the event object is 1); deep reports containers
// nested past MaxDepth. The value is still parsed to its end, so a deep
// element refuses only itself; the open containers are kept as one bit
// each, so a hostile body costs at most len(body)/8 bytes.
func (p *parser) skip(depth int) (deep bool, err error) {
	var buf [2]uint64
	stack := buf[:0] // bit set: open container is an object
	n := 0           // open containers
	for {
		p.ws()
		if p.i >= len(p.b) {
			return false, p.unexpected()
		}
		opened := false
		switch c := p.b[p.i]; c {
		case '{', '[':
			if depth+n+1 > p.lim.MaxDepth {
				deep = true
			}
			p.i++
			p.ws()
			if p.i < len(p.b) && ((c == '{' && p.b[p.i] == '}') || (c == '[' && p.b[p.i] == ']')) {
				p.i++
				break
			}
			if n/64 >= len(stack) {
				stack = append(stack, 0)
			}
			if c == '{' {
				stack[n/64] |= 1 << (n % 64)
			} else {
				stack[n/64] &^= 1 << (n % 64)
			}
			n++
			opened = true
			if c == '{' {
				if err := p.key(); err != nil {
					return false, err
				}
			}
		case '"':
			if _, err := p.str(); err != nil {
				return false, err
			}
		case 't':
			if err := p.lit("true"); err != nil {
				return false, err
			}
		case 'f':
			if err := p.lit("false"); err != nil {
				return false, err
			}
		case 'n':
			if err := p.lit("null"); err != nil {
				return false, err
			}
		default:
			if _, _, _, err := p.num(); err != nil {
				return false, err
			}
		}
		if opened {
			continue
		}
		// A value ended: close containers until one goes on with a comma.
		for {
			if n == 0 {
				return deep, nil
			}
			p.ws()
			if p.i >= len(p.b) {
				return false, p.unexpected()
			}
			obj := stack[(n-1)/64]&(1<<((n-1)%64)) != 0
			c := p.b[p.i]
			if c == ',' {
				p.i++
				if obj {
					if err := p.key(); err != nil {
						return false, err
					}
				}
				break
			}
			if (obj && c == '}') || (!obj && c == ']') {
				p.i++
				n--
				continue
			}
			return false, p.unexpected()
		}
	}
}

// key consumes an object key and its colon.
func (p *parser) key() error {
	p.ws()
	if _, err := p.str(); err != nil {
		return err
	}
	return p.expect(':')
}
