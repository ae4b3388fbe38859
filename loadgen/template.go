package loadgen

// Template is a request body built once whose decimal counters are
// rewritten in place for every request: a client that formats every event
// of a 50-event batch spends CPU the server it measures needs on two cores.
type Template struct {
	Body   []byte
	Units  int // events (or other units) in one body
	Fields []Field
}

// Field is a fixed-width run of decimal digits in a Template's Body. Unit
// Unit of request i is unit i*Units+Unit of the run; the field holds that
// number modulo Mod (no modulo when Mod is 0), zero-padded to Width
// digits, so the number must fit in Width digits to stay unique.
type Field struct {
	Off, Width, Unit int
	Mod              int64
}

// Fill rewrites the fields of body, a copy of t.Body, for request i.
func (t *Template) Fill(body []byte, i int64) {
	base := i * int64(t.Units)
	for _, f := range t.Fields {
		n := base + int64(f.Unit)
		if f.Mod > 0 {
			n %= f.Mod
		}
		putDigits(body[f.Off:f.Off+f.Width], n)
	}
}

// putDigits writes n in decimal into dst, zero-padded on the left and
// keeping only the low digits when n has more than len(dst).
func putDigits(dst []byte, n int64) {
	for k := len(dst) - 1; k >= 0; k-- {
		dst[k] = byte('0' + n%10)
		n /= 10
	}
}

// TemplateBuilder builds a Template from text and fields in order.
type TemplateBuilder struct {
	t Template
}

// Text appends literal text.
func (b *TemplateBuilder) Text(s string) {
	b.t.Body = append(b.t.Body, s...)
}

// Field appends a counter field of width digits (see Field).
func (b *TemplateBuilder) Field(width, unit int, mod int64) {
	b.t.Fields = append(b.t.Fields, Field{Off: len(b.t.Body), Width: width, Unit: unit, Mod: mod})
	for range width {
		b.t.Body = append(b.t.Body, '0')
	}
}

// Template returns what was built, a body of units units.
func (b *TemplateBuilder) Template(units int) Template {
	t := b.t
	t.Units = units
	return t
}
