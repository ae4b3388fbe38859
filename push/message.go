package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Client operations.
const (
	OpAuth        = "auth"
	OpSubscribe   = "subscribe"
	OpUnsubscribe = "unsubscribe"
)

// ClientMessage is a decoded, validated client message.
type ClientMessage struct {
	Op       string
	Token    string        // auth
	ID       string        // subscribe, unsubscribe
	Site     string        // subscribe
	Metric   string        // subscribe
	Step     string        // subscribe
	Window   time.Duration // subscribe
	GroupBy  string        // subscribe: "" or the one dimension
	Since    int64         // subscribe, when HasSince
	HasSince bool
	// Query is a live query's body (the body of POST /v1/stats), a JSON
	// object; "" for the site/metric form. A string keeps the message
	// comparable.
	Query string
}

type wireClient struct {
	Op      *string          `json:"op"`
	Token   *string          `json:"token"`
	ID      *string          `json:"id"`
	Site    *string          `json:"site"`
	Metric  *string          `json:"metric"`
	Step    *string          `json:"step"`
	Window  *string          `json:"window"`
	GroupBy *[]string        `json:"group_by"`
	Since   *json.RawMessage `json:"since"`
	Query   *json.RawMessage `json:"query"`
}

// ErrBadMessage marks a client message that DecodeClientMessage refused.
var ErrBadMessage = errors.New("push: bad client message")

// maxWindow is the longest window a subscription may ask for; the catalog's
// retention of the step limits it further.
const maxWindow = 400 * 24 * time.Hour

// DecodeClientMessage decodes and validates one client message: one JSON
// object, no unknown fields, only the fields of its op, each well formed.
// Errors wrap ErrBadMessage and say which field is wrong and why.
func DecodeClientMessage(b []byte) (ClientMessage, error) {
	var w wireClient
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return ClientMessage{}, bad("not a JSON object of known fields: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return ClientMessage{}, bad("trailing data after the JSON object")
	}
	if w.Op == nil {
		return ClientMessage{}, bad(`missing "op" (auth, subscribe or unsubscribe)`)
	}
	m := ClientMessage{Op: *w.Op}
	switch m.Op {
	case OpAuth:
		if err := only(w, "token"); err != nil {
			return ClientMessage{}, err
		}
		if w.Token == nil || *w.Token == "" {
			return ClientMessage{}, bad(`auth needs a non-empty "token"`)
		}
		if len(*w.Token) > 512 {
			return ClientMessage{}, bad(`"token" is longer than 512 bytes`)
		}
		m.Token = *w.Token
		return m, nil
	case OpUnsubscribe:
		if err := only(w, "id"); err != nil {
			return ClientMessage{}, err
		}
		id, err := checkID(w.ID)
		if err != nil {
			return ClientMessage{}, err
		}
		m.ID = id
		return m, nil
	case OpSubscribe:
		if w.Query != nil {
			return decodeLiveSubscribe(w)
		}
		if err := only(w, "id", "site", "metric", "step", "window", "group_by", "since"); err != nil {
			return ClientMessage{}, err
		}
		var err error
		if m.ID, err = checkID(w.ID); err != nil {
			return ClientMessage{}, err
		}
		if m.Site, err = checkName("site", w.Site); err != nil {
			return ClientMessage{}, err
		}
		if m.Metric, err = checkName("metric", w.Metric); err != nil {
			return ClientMessage{}, err
		}
		if m.Step, err = checkName("step", w.Step); err != nil {
			return ClientMessage{}, err
		}
		if w.Window == nil {
			return ClientMessage{}, bad(`subscribe needs "window", e.g. "15m"`)
		}
		if m.Window, err = ParseWindow(*w.Window); err != nil {
			return ClientMessage{}, err
		}
		if w.GroupBy != nil {
			switch g := *w.GroupBy; len(g) {
			case 0:
			case 1:
				if m.GroupBy, err = checkName("group_by[0]", &g[0]); err != nil {
					return ClientMessage{}, err
				}
			default:
				return ClientMessage{}, bad(`"group_by" has %d dimensions, at most one is supported`, len(g))
			}
		}
		if m.Since, m.HasSince, err = checkSince(w.Since); err != nil {
			return ClientMessage{}, err
		}
		return m, nil
	default:
		return ClientMessage{}, bad(`unknown op %.40q (auth, subscribe or unsubscribe)`, m.Op)
	}
}

// decodeLiveSubscribe decodes the live query form of subscribe: id,
// query and since.
func decodeLiveSubscribe(w wireClient) (ClientMessage, error) {
	if err := only(w, "id", "query", "since"); err != nil {
		return ClientMessage{}, err
	}
	m := ClientMessage{Op: OpSubscribe}
	var err error
	if m.ID, err = checkID(w.ID); err != nil {
		return ClientMessage{}, err
	}
	if err := checkQuery(*w.Query); err != nil {
		return ClientMessage{}, err
	}
	m.Query = string(*w.Query)
	if m.Since, m.HasSince, err = checkSince(w.Since); err != nil {
		return ClientMessage{}, err
	}
	return m, nil
}

func checkSince(p *json.RawMessage) (int64, bool, error) {
	if p == nil {
		return 0, false, nil
	}
	s := string(*p)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false, bad(`"since" must be a non-negative integer seq, got %.40s`, s)
	}
	return n, true, nil
}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadMessage, fmt.Sprintf(format, args...))
}

// only refuses fields that op does not take.
func only(w wireClient, allowed ...string) error {
	present := map[string]bool{
		"token": w.Token != nil, "id": w.ID != nil, "site": w.Site != nil, "metric": w.Metric != nil,
		"step": w.Step != nil, "window": w.Window != nil, "group_by": w.GroupBy != nil, "since": w.Since != nil,
		"query": w.Query != nil,
	}
	for _, a := range allowed {
		delete(present, a)
	}
	for _, f := range []string{"token", "id", "site", "metric", "step", "window", "group_by", "since", "query"} {
		if present[f] {
			return bad("op %q does not take %q", *w.Op, f)
		}
	}
	return nil
}

func checkID(p *string) (string, error) {
	if p == nil || *p == "" {
		return "", bad(`missing "id"`)
	}
	id := *p
	if len(id) > 64 {
		return "", bad(`"id" is longer than 64 bytes`)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return "", bad(`"id" may hold only printable ASCII without spaces`)
		}
	}
	return id, nil
}

// checkName accepts [a-z0-9_.-]{1,64}, the shape of site and metric names.
func checkName(field string, p *string) (string, error) {
	if p == nil || *p == "" {
		return "", bad("missing %q", field)
	}
	s := *p
	if len(s) > 64 {
		return "", bad("%q is longer than 64 bytes", field)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return "", bad("%q %.70q may hold only a-z 0-9 _ . -", field, s)
		}
	}
	return s, nil
}

// ParseWindow parses a window such as "15m", "1h30m" or "7d" (Go durations
// plus whole days); it must be positive and at most 400 days.
func ParseWindow(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok && days != "" && !strings.ContainsAny(days, "hmsuµn.") {
		var n int64
		n, err = strconv.ParseInt(days, 10, 64)
		if err == nil && (n <= 0 || n > 400) {
			err = errors.New("out of range")
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 || d > maxWindow {
		return 0, bad(`"window" %.40q is not a duration between 1s and 400d, e.g. "15m"`, s)
	}
	return d, nil
}
