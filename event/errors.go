package event

import (
	"errors"
	"strconv"
	"strings"
)

// Errors about a body as a whole; Decode wraps them with details.
var (
	ErrEmpty     = errors.New("event: body holds no event")
	ErrTooLarge  = errors.New("event: body too large")
	ErrTooMany   = errors.New("event: too many events in one body")
	ErrMalformed = errors.New("event: malformed body")
)

// Reject says why the event at Index of a request was refused.
type Reject struct {
	Index int    `json:"index"`
	Error string `json:"error"`
	// Reason is a short, low-cardinality class of the error ("json",
	// "depth", "object", or the field: "id", "site", "type", "ts", "url",
	// "ref", "uid", "props"), for metrics. It is not part of the answer.
	Reason string `json:"-"`
}

// FieldError is an event that is well-formed JSON but has a bad field.
type FieldError struct {
	Field  string // "site", "ts", "props.plan", ...
	Msg    string // what is wrong and what is allowed
	reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Reason is the low-cardinality class of the error: the top-level field
// name ("props" for any props key), or "object" when the event is not an
// object.
func (e *FieldError) Reason() string {
	if e.reason != "" {
		return e.reason
	}
	if e.Field == "" {
		return "object"
	}
	// The first '.' or '[' ends the field name: a quoted key after '['
	// may hold dots of its own.
	if i := strings.IndexAny(e.Field, ".["); i >= 0 {
		return e.Field[:i]
	}
	return e.Field
}

// syntaxError is JSON that cannot be parsed: the end of the value is
// unknown.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string {
	return "invalid JSON at offset " + strconv.Itoa(e.off) + ": " + e.msg
}

// reject makes the Reject for an error returned by the parser or Validate.
func reject(i int, err error) Reject {
	r := Reject{Index: i, Error: err.Error(), Reason: "json"}
	var fe *FieldError
	if errors.As(err, &fe) {
		r.Reason = fe.Reason()
	}
	return r
}
