package event

import (
	"math"
	"strconv"
)

// field identifies a known member of the event object.
type field uint8

const (
	fUnknown field = iota
	fID
	fSite
	fType
	fTS
	fURL
	fRef
	fUID
	fProps
	fHash
	// server fields, decoded from stream records only
	fRT
	fPath
	fRefHost
	fDevice
	fBot
	fSource
	fUTMSource
	fUTMMedium
	fUTMCampaign
	fUTMContent
	fUTMTerm
	fBrowser
	fBrowserVersion
	fOS
	fOSVersion
	fCountry
)

func (p *parser) fieldOf(k []byte) field {
	switch string(k) {
	case "id":
		return fID
	case "site":
		return fSite
	case "type":
		return fType
	case "ts":
		return fTS
	case "url":
		return fURL
	case "ref":
		return fRef
	case "uid":
		return fUID
	case "props":
		return fProps
	case "hash":
		return fHash
	}
	if !p.record {
		// A client cannot set what the server derives.
		return fUnknown
	}
	switch string(k) {
	case "rt":
		return fRT
	case "path":
		return fPath
	case "ref_host":
		return fRefHost
	case "device":
		return fDevice
	case "bot":
		return fBot
	case "source":
		return fSource
	case "utm_source":
		return fUTMSource
	case "utm_medium":
		return fUTMMedium
	case "utm_campaign":
		return fUTMCampaign
	case "utm_content":
		return fUTMContent
	case "utm_term":
		return fUTMTerm
	case "browser":
		return fBrowser
	case "browser_version":
		return fBrowserVersion
	case "os":
		return fOS
	case "os_version":
		return fOSVersion
	case "country":
		return fCountry
	}
	return fUnknown
}

// stringField is the string field f of e, nil when f is not a string.
func stringField(e *Event, f field) *string {
	switch f {
	case fID:
		return &e.ID
	case fSite:
		return &e.Site
	case fType:
		return &e.Type
	case fURL:
		return &e.URL
	case fRef:
		return &e.Ref
	case fUID:
		return &e.UID
	case fPath:
		return &e.Path
	case fRefHost:
		return &e.RefHost
	case fDevice:
		return &e.Device
	}
	return visitField(&e.Visit, f)
}

// visitField is the Visit field f of v, nil when f is none.
func visitField(v *Visit, f field) *string {
	switch f {
	case fSource:
		return &v.Source
	case fUTMSource:
		return &v.UTMSource
	case fUTMMedium:
		return &v.UTMMedium
	case fUTMCampaign:
		return &v.UTMCampaign
	case fUTMContent:
		return &v.UTMContent
	case fUTMTerm:
		return &v.UTMTerm
	case fBrowser:
		return &v.Browser
	case fBrowserVersion:
		return &v.BrowserVersion
	case fOS:
		return &v.OS
	case fOSVersion:
		return &v.OSVersion
	case fCountry:
		return &v.Country
	}
	return nil
}

var fieldNames = [...]string{fID: "id", fSite: "site", fType: "type", fTS: "ts", fURL: "url", fRef: "ref",
	fUID: "uid", fProps: "props", fHash: "hash", fRT: "rt", fPath: "path", fRefHost: "ref_host", fDevice: "device", fBot: "bot",
	fSource: "source", fUTMSource: "utm_source", fUTMMedium: "utm_medium", fUTMCampaign: "utm_campaign",
	fUTMContent: "utm_content", fUTMTerm: "utm_term", fBrowser: "browser", fBrowserVersion: "browser_version",
	fOS: "os", fOSVersion: "os_version", fCountry: "country"}

// event decodes the JSON object at p.i into e. A syntax error means the end
// of the value is unknown. A field error (well-formed JSON, wrong shape)
// leaves p.i after the value so the caller can go on with the next one.
func (p *parser) event(e *Event) (fieldErr *FieldError, synErr error) {
	p.ws()
	if p.i >= len(p.b) {
		return nil, p.unexpected()
	}
	if p.b[p.i] != '{' {
		if _, err := p.skip(0); err != nil {
			return nil, err
		}
		return &FieldError{Msg: "event must be a JSON object"}, nil
	}
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return nil, nil
	}
	for {
		p.ws()
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		f := p.fieldOf(k)
		if err := p.expect(':'); err != nil {
			return nil, err
		}
		p.ws()
		fe, err := p.value(e, f)
		if err != nil {
			return nil, err
		}
		if fe != nil && fieldErr == nil {
			fieldErr = fe
		}
		p.ws()
		if p.i >= len(p.b) {
			return nil, p.unexpected()
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return fieldErr, nil
		default:
			return nil, p.unexpected()
		}
	}
}

// wrongType skips the value and reports that field f must be of kind want.
func (p *parser) wrongType(f field, want string) (*FieldError, error) {
	if _, err := p.skip(1); err != nil {
		return nil, err
	}
	return &FieldError{Field: fieldNames[f], Msg: "must be " + want}, nil
}

// value decodes the value of member f. null leaves a field unset.
func (p *parser) value(e *Event, f field) (*FieldError, error) {
	if p.i >= len(p.b) {
		return nil, p.unexpected()
	}
	c := p.b[p.i]
	if c == 'n' && f != fUnknown {
		return nil, p.lit("null")
	}
	switch f {
	case fUnknown:
		return p.skipUnknown()
	case fID, fSite, fType, fURL, fRef, fUID, fPath, fRefHost, fDevice, fSource, fUTMSource, fUTMMedium,
		fUTMCampaign, fUTMContent, fUTMTerm, fBrowser, fBrowserVersion, fOS, fOSVersion, fCountry:
		if c != '"' {
			return p.wrongType(f, "a string")
		}
		v, err := p.strVal()
		if err != nil {
			return nil, err
		}
		*stringField(e, f) = v
		return nil, nil
	case fTS, fRT:
		if c != '-' && (c < '0' || c > '9') {
			return p.wrongType(f, "an integer (ms since the epoch)")
		}
		start, end, isInt, err := p.num()
		if err != nil {
			return nil, err
		}
		if !isInt {
			return &FieldError{Field: fieldNames[f], Msg: "must be an integer (ms since the epoch)"}, nil
		}
		v, err := strconv.ParseInt(string(p.b[start:end]), 10, 64)
		if err != nil {
			return &FieldError{Field: fieldNames[f], Msg: "out of range"}, nil
		}
		if f == fTS {
			e.TS = v
		} else {
			e.RT = v
		}
		return nil, nil
	case fBot, fHash:
		return p.boolField(e, f)
	case fProps:
		if c != '{' {
			return p.wrongType(f, "an object")
		}
		return p.props(e)
	}
	return p.skipUnknown()
}

// boolField decodes the bool value of member f (bot or hash).
func (p *parser) boolField(e *Event, f field) (*FieldError, error) {
	v, lit := true, "true"
	switch p.b[p.i] {
	case 't':
	case 'f':
		v, lit = false, "false"
	default:
		return p.wrongType(f, "a bool")
	}
	if f == fBot {
		e.Bot = v
	} else {
		e.Hash = v
	}
	return nil, p.lit(lit)
}

// skipUnknown skips the value of a field this version does not know.
func (p *parser) skipUnknown() (*FieldError, error) {
	deep, err := p.skip(1)
	if err != nil || !deep {
		return nil, err
	}
	return &FieldError{Msg: "JSON nested deeper than " + strconv.Itoa(p.lim.MaxDepth) + " levels", reason: "depth"}, nil
}

// props decodes the flat props object at p.i.
func (p *parser) props(e *Event) (fieldErr *FieldError, synErr error) {
	p.i++ // '{'
	p.ws()
	e.Props = nil
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return nil, nil
	}
	fail := func(fe *FieldError) {
		if fieldErr == nil {
			fieldErr = fe
		}
	}
	for {
		p.ws()
		k, err := p.strVal()
		if err != nil {
			return nil, err
		}
		if err := p.expect(':'); err != nil {
			return nil, err
		}
		p.ws()
		if p.i >= len(p.b) {
			return nil, p.unexpected()
		}
		var v any
		switch c := p.b[p.i]; c {
		case '"':
			s, err := p.strVal()
			if err != nil {
				return nil, err
			}
			v = s
		case 't':
			if err := p.lit("true"); err != nil {
				return nil, err
			}
			v = true
		case 'f':
			if err := p.lit("false"); err != nil {
				return nil, err
			}
			v = false
		case 'n':
			if err := p.lit("null"); err != nil {
				return nil, err
			}
			fail(&FieldError{Field: propField(k), Msg: "null is not allowed (values are strings, numbers or bools)"})
		case '{', '[':
			if _, err := p.skip(2); err != nil {
				return nil, err
			}
			fail(&FieldError{Field: propField(k), Msg: "nested objects and arrays are not allowed (props are flat)"})
		default:
			start, end, isInt, err := p.num()
			if err != nil {
				return nil, err
			}
			f, ok := parseNum(p.b[start:end], isInt)
			if !ok {
				fail(&FieldError{Field: propField(k), Msg: "number out of range (magnitude at most 1e15)"})
				break
			}
			v = f
		}
		if v != nil && fieldErr == nil {
			if e.Props == nil {
				e.Props = make(map[string]any, 4)
			}
			if len(e.Props) >= p.lim.MaxProps {
				if _, dup := e.Props[k]; !dup {
					fail(&FieldError{Field: "props", Msg: "more than " + strconv.Itoa(p.lim.MaxProps) + " keys"})
				}
			}
			if fieldErr == nil {
				e.Props[k] = v
			}
		}
		p.ws()
		if p.i >= len(p.b) {
			return nil, p.unexpected()
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return fieldErr, nil
		default:
			return nil, p.unexpected()
		}
	}
}

// MaxPropNumber bounds numbers in props, in every ingest format: beyond it
// float64 loses integer precision and the value is more likely garbage
// than a measurement.
const MaxPropNumber = 1e15

// parseNum parses a JSON number already checked for syntax.
func parseNum(b []byte, isInt bool) (float64, bool) {
	if isInt && len(b) <= 16 {
		neg := b[0] == '-'
		if neg {
			b = b[1:]
		}
		var n int64
		for _, c := range b {
			n = n*10 + int64(c-'0')
		}
		f := float64(n)
		if neg {
			f = -f
		}
		return f, f <= MaxPropNumber && f >= -MaxPropNumber
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f > MaxPropNumber || f < -MaxPropNumber {
		return 0, false
	}
	return f, true
}

// propField names a props key in an error message, quoted when it is
// long or has bytes a reader would not see.
func propField(k string) string {
	if len(k) > 0 && len(k) <= 64 {
		simple := true
		for i := 0; i < len(k); i++ {
			c := k[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
				simple = false
				break
			}
		}
		if simple {
			return "props." + k
		}
	}
	if len(k) > 64 {
		k = k[:64] + "..."
	}
	return "props[" + strconv.QuoteToASCII(k) + "]"
}
