package stats

// Error is a query the API refuses: Part names where in the body
// ("metrics[2]", "filters[0][1]", "date_range", "pagination.limit", ...)
// and Msg what is wrong there and what is allowed. The HTTP layer answers it
// as 400 with Error() as the message.
type Error struct {
	Part string
	Msg  string
}

func (e *Error) Error() string {
	if e.Part == "" {
		return e.Msg
	}
	return e.Part + ": " + e.Msg
}

func errf(part, msg string) *Error { return &Error{Part: part, Msg: msg} }
