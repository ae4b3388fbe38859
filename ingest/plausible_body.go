package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/internal/httperr"
	"github.com/pulsehq/pulse/metric"
)

// Bounds of /api/event that are Plausible's (lib/plausible/ingestion/
// request.ex), where they are stricter than Pulse's event.Limits; the
// prop key and value bounds are Pulse's (64 and 512 bytes by default,
// Plausible's are 300 and 2000).
const (
	plausibleMaxURL   = 2000 // url; a longer referrer is cut to it, as Plausible does
	plausibleMaxProps = 30
	// plausibleMaxBody bounds a body, which is one event: the largest
	// valid one (30 props of 64 + 512 bytes, a url of 2000) is under
	// 24 KiB; a longer referrer is cut, so a browser's (at most 4 KiB)
	// fits too. Reading 1 MiB of JSON to refuse it costs 30 ms.
	plausibleMaxBody = 64 << 10
	// plausibleMaxKeys bounds the keys read of the body and of props
	// (null and blank ones included): Plausible's bodies have about ten.
	plausibleMaxKeys = 100
	// plausibleMaxSites bounds the sites of one event's domain list, each
	// of which becomes an event: Plausible sets no bound, but a body is
	// one event and should not fan out without one.
	plausibleMaxSites = 10
	// Plausible's bound on engaged time: older trackers sent garbage.
	plausibleMaxEngagedMS = 30 * 24 * 3600 * 1000
)

// Props that /api/event adds to what the sender's props hold.
const (
	propRevenueAmount   = "revenue_amount"
	propRevenueCurrency = "revenue_currency"
	propScrollDepth     = "scroll_depth"
	propEngagedMS       = "engaged_ms"
	propInteractive     = "interactive"
)

// plausibleError is a refused /api/event body: field is Plausible's name
// for the part (event_name, url, domain, props, revenue, request), reason
// the low-cardinality class counted in pulse_ingest_rejected_total.
type plausibleError struct {
	field, reason, msg string
}

func (e *plausibleError) Error() string { return e.field + ": " + e.msg }

// Unwrap makes the answer a 400.
func (e *plausibleError) Unwrap() error { return httperr.BadRequest(e.Error()) }

// plausibleEvent is one /api/event body, read: what the events of its
// sites share.
type plausibleEvent struct {
	name, url, ref string
	sites          []string
	props          map[string]any
	hashMode       bool
}

// parsePlausible reads a body of Plausible's Events API: full keys (name,
// url, domain, referrer, props, revenue, interactive, hashMode) or the
// trackers' short ones (n, u, d, r, p or m, $, i, h), as Plausible reads
// them (the short key first). maxProps is Pulse's bound on props keys.
func parsePlausible(body []byte, maxProps int) (*plausibleEvent, error) {
	m, err := readObject(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), plausibleMaxKeys, true)
	if err != nil {
		return nil, &plausibleError{"request", "json", "Unable to parse request body as json (one JSON object): " + err.Error()}
	}
	pe := &plausibleEvent{}
	if pe.name, err = plausibleName(pick(m, "n", "name")); err != nil {
		return nil, err
	}
	if pe.url, err = plausibleURL(pick(m, "u", "url")); err != nil {
		return nil, err
	}
	if pe.sites, err = plausibleSites(pick(m, "d", "domain"), pe.url); err != nil {
		return nil, err
	}
	var ref string
	if json.Unmarshal(pick(m, "r", "referrer"), &ref) == nil {
		pe.ref = cutUTF8(ref, plausibleMaxURL)
	}
	var hash json.Number
	pe.hashMode = json.Unmarshal(pick(m, "h", "hashMode"), &hash) == nil && hash == "1"
	if pe.props, err = plausibleProps(pick(m, "m", "meta", "p", "props"), min(plausibleMaxProps, maxProps)); err != nil {
		return nil, err
	}
	if err := pe.addRevenue(pick(m, "$", "revenue")); err != nil {
		return nil, err
	}
	if pe.name == metric.Engagement {
		if err := pe.addEngagement(m["sd"], m["e"]); err != nil {
			return nil, err
		}
	}
	for _, k := range []string{"i", "interactive"} {
		var b bool
		if json.Unmarshal(m[k], &b) == nil {
			if !b {
				pe.setProp(propInteractive, false)
			}
			break
		}
	}
	return pe, nil
}

// pick returns the first of keys whose value is neither missing, null nor
// false: Elixir's `body["n"] || body["name"]`.
func pick(m map[string]json.RawMessage, keys ...string) json.RawMessage {
	for _, k := range keys {
		if v, ok := m[k]; ok && string(v) != "null" && string(v) != "false" {
			return v
		}
	}
	return nil
}

// plausibleName is the event name: a string, or an integer (404 tracking
// sends one), 1 to event.MaxEventName bytes without control characters.
func plausibleName(raw json.RawMessage) (string, error) {
	if raw == nil {
		return "", &plausibleError{"event_name", "type", "can't be blank"}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return "", &plausibleError{"event_name", "type", "must be a string or an integer"}
		}
		if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
			return "", &plausibleError{"event_name", "type", "must be a string or an integer"}
		}
		s = string(n)
	}
	if !event.IsEventName(s) {
		return "", &plausibleError{"event_name", "type",
			"must be 1 to " + strconv.Itoa(event.MaxEventName) + " bytes of UTF-8 without control characters"}
	}
	return s, nil
}

func plausibleURL(raw json.RawMessage) (string, error) {
	if raw == nil {
		return "", &plausibleError{"url", "url", "is required"}
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", &plausibleError{"url", "url", "must be a string"}
	}
	if strings.TrimSpace(s) == "" {
		return "", &plausibleError{"url", "url", "can't be blank"}
	}
	if len(s) > plausibleMaxURL {
		return "", &plausibleError{"url", "url", "longer than " + strconv.Itoa(plausibleMaxURL) + " bytes"}
	}
	if scheme, _, ok := strings.Cut(s, ":"); ok && strings.EqualFold(scheme, "data") {
		return "", &plausibleError{"url", "url", "scheme is not allowed"}
	}
	return s, nil
}

// plausibleSites reads the domain list, "a.com,b.com" (one event each), or
// takes the url's host: trimmed, lower case, without "www.", without
// repeats. Each must be a site Pulse knows, checked later as for
// /v1/collect.
func plausibleSites(raw json.RawMessage, u string) ([]string, error) {
	var list string
	switch {
	case raw == nil:
		pu, err := url.Parse(u)
		if err != nil || pu.Hostname() == "" {
			return nil, &plausibleError{"domain", "site", "can't be blank (and the url has no host)"}
		}
		list = pu.Hostname()
	case json.Unmarshal(raw, &list) != nil:
		return nil, &plausibleError{"domain", "site", "must be a string"}
	}
	if strings.TrimSpace(list) == "" {
		return nil, &plausibleError{"domain", "site", "can't be blank"}
	}
	parts := strings.Split(list, ",")
	if len(parts) > plausibleMaxSites {
		return nil, &plausibleError{"domain", "site", "more than " + strconv.Itoa(plausibleMaxSites) + " sites in one event"}
	}
	sites := make([]string, 0, len(parts))
	for _, p := range parts {
		s := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(p), "www."))
		if !event.IsName(s) {
			return nil, &plausibleError{"domain", "site", quote(s) + " is not a site name ([a-z0-9_.-]{1,64})"}
		}
		if !slices.Contains(sites, s) {
			sites = append(sites, s)
		}
	}
	return sites, nil
}

// plausibleProps reads props: an object, or a JSON string of one (older
// trackers stringify them). Values are kept as strings, numbers or bools
// (Plausible stringifies numbers; keeping them makes sum:props work);
// null and blank values are left out, as Plausible does; a nested value
// is refused (Plausible drops it silently).
func plausibleProps(raw json.RawMessage, max int) (map[string]any, error) {
	if raw == nil {
		return nil, nil
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	// Read with a bound on the keys seen, blank and null ones included,
	// so that a body of a million keys costs no more than a small one.
	m, err := readObject(raw, plausibleMaxKeys, false)
	if err != nil {
		return nil, &plausibleError{"props", "props", "must be an object (or a JSON string of one) of at most " +
			strconv.Itoa(plausibleMaxKeys) + " keys: " + err.Error()}
	}
	props := make(map[string]any, len(m))
	for k, v := range m {
		if strings.TrimSpace(k) == "" {
			continue
		}
		val, err := propValue(k, v)
		if err != nil {
			return nil, err
		}
		if val != nil {
			props[k] = val
		}
	}
	if len(props) > max {
		return nil, &plausibleError{"props", "props", "more than " + strconv.Itoa(max) + " keys"}
	}
	return props, nil
}

func propValue(k string, v json.RawMessage) (any, error) {
	if len(v) > 0 && (v[0] == '{' || v[0] == '[') {
		return nil, &plausibleError{"props", "props", quote(k) + ": must be a string, number or bool"}
	}
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return nil, &plausibleError{"props", "props", quote(k) + ": " + err.Error()}
	}
	switch x := x.(type) {
	case string:
		if strings.TrimSpace(x) == "" {
			return nil, nil
		}
		return x, nil
	case float64:
		if math.Abs(x) > event.MaxPropNumber {
			return nil, &plausibleError{"props", "props", quote(k) + ": number out of range (magnitude at most 1e15)"}
		}
		return x, nil
	}
	return x, nil // nil (left out) or a bool
}

// readObject reads a JSON object's members, stopping at the first of
// more than maxKeys: the cost of a hostile body is bounded by the keys
// read, not by the body. whole says data must hold nothing after it.
func readObject(data []byte, maxKeys int, whole bool) (map[string]json.RawMessage, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	m := map[string]json.RawMessage{}
	for n := 0; d.More(); n++ {
		if n == maxKeys {
			return nil, errors.New("more than " + strconv.Itoa(maxKeys) + " keys")
		}
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, err
		}
		m[tok.(string)] = v
	}
	if _, err := d.Token(); err != nil { // '}'
		return nil, err
	}
	if _, err := d.Token(); whole && err != io.EOF {
		return nil, errors.New("data after the object")
	}
	return m, nil
}

func (pe *plausibleEvent) setProp(k string, v any) {
	if pe.props == nil {
		pe.props = map[string]any{}
	}
	pe.props[k] = v
}

// addRevenue keeps {"amount","currency"} (an object or a JSON string of
// one) as the props revenue_amount (a number) and revenue_currency (ISO
// 4217, three capital letters). Plausible ignores a malformed revenue;
// Pulse refuses it, naming what is wrong.
func (pe *plausibleEvent) addRevenue(raw json.RawMessage) error {
	if raw == nil {
		return nil
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	var r struct {
		Amount   json.RawMessage `json:"amount"`
		Currency string          `json:"currency"`
	}
	if json.Unmarshal(raw, &r) != nil || r.Amount == nil || r.Currency == "" {
		return &plausibleError{"revenue", "revenue", `must be {"amount": number or numeric string, "currency": "EUR"}`}
	}
	if len(r.Currency) != 3 || strings.ToUpper(r.Currency) != r.Currency || strings.Trim(r.Currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return &plausibleError{"revenue", "revenue", "currency must be an ISO 4217 code (three capital letters)"}
	}
	var amount string
	if json.Unmarshal(r.Amount, &amount) != nil {
		amount = string(r.Amount)
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(amount), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > 1e15 {
		return &plausibleError{"revenue", "revenue", "amount must be a number (magnitude at most 1e15)"}
	}
	pe.setProp(propRevenueAmount, f)
	pe.setProp(propRevenueCurrency, r.Currency)
	return nil
}

// addEngagement keeps an engagement event's scroll depth (sd, percent,
// over 100 counted as 100) and engaged time (e, ms) as props, each when
// it is a valid integer; with neither, the event is refused as Plausible
// refuses it.
func (pe *plausibleEvent) addEngagement(sd, e json.RawMessage) error {
	depth, okDepth := intField(sd)
	if okDepth && depth > 100 {
		depth = 100
	}
	okDepth = okDepth && depth >= 0
	ms, okMS := intField(e)
	okMS = okMS && ms >= 0 && ms < plausibleMaxEngagedMS
	if !okDepth && !okMS {
		return &plausibleError{"event_name", "engagement",
			"engagement event requires a valid integer value for at least one of 'sd' or 'e' fields"}
	}
	if okDepth {
		pe.setProp(propScrollDepth, float64(depth))
	}
	if okMS {
		pe.setProp(propEngagedMS, float64(ms))
	}
	return nil
}

// intField reads an integer sent as a number or a string.
func intField(raw json.RawMessage) (int64, bool) {
	if raw == nil {
		return 0, false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// cutUTF8 cuts s to at most max bytes without splitting a character.
func cutUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}
