package stats

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones in containers without /usr/share/zoneinfo

	"github.com/pulsehq/pulse/event"
)

// Bounds of one query, so that parsing and answering it stay cheap
// whatever the body says.
const (
	MaxBodyBytes   = 256 << 10
	MaxMetrics     = 20
	MaxDimensions  = 10
	MaxFilterDepth = 8 // a top-level filter is at depth 1
	MaxFilterNodes = 100
	MaxClauses     = 1000 // over the whole tree
	MaxClauseBytes = 2048 // a URL's length at ingest
	MaxRegexBytes  = 512
	MaxLimit       = 10_000 // Plausible's maximum and default
	MaxOffset      = 1_000_000_000
	// MaxMinuteSpan is Plausible's bound of time:minute ranges.
	MaxMinuteSpan = 30 * time.Hour
)

var topKeys = []string{"site_id", "metrics", "date_range", "dimensions", "filters", "order_by", "include", "pagination", "timezone"}

// Parse reads a Stats API body and checks it; now resolves relative date
// ranges. The error is an *Error naming the part of the body.
func Parse(body []byte, now time.Time) (Query, error) {
	q, err := parse(body, now)
	if err != nil {
		return Query{}, err
	}
	return q, nil
}

func parse(body []byte, now time.Time) (Query, *Error) {
	if len(body) > MaxBodyBytes {
		return Query{}, errf("body", "larger than "+strconv.Itoa(MaxBodyBytes)+" bytes")
	}
	now = now.Round(0) // no monotonic reading in the range's instants
	f, err := object(body, "body", topKeys)
	if err != nil {
		return Query{}, err
	}
	for _, k := range []string{"site_id", "metrics", "date_range"} {
		if _, ok := f[k]; !ok {
			return Query{}, errf(k, "required")
		}
	}
	q := Query{Limit: MaxLimit, Location: time.UTC}
	if q.Site, err = str(f["site_id"], "site_id"); err != nil {
		return Query{}, err
	}
	if !event.IsName(q.Site) {
		return Query{}, errf("site_id", "must match [a-z0-9_.-]{1,64}")
	}
	if raw, ok := f["timezone"]; ok {
		if q.Location, err = parseLocation(raw); err != nil {
			return Query{}, err
		}
	}
	if q.Range, err = parseDateRange(f["date_range"], now, q.Location); err != nil {
		return Query{}, err
	}
	if err := q.Range.checkYears(); err != nil {
		return Query{}, err
	}
	if err := parseLists(f, &q); err != nil {
		return Query{}, err
	}
	if err := checkRules(q); err != nil {
		return Query{}, err
	}
	if !q.Range.AllTime {
		if err := checkRangeLength(q); err != nil {
			return Query{}, err
		}
	}
	return q, nil
}

// parseLists reads the parts after the range: metrics, dimensions,
// filters, order_by, include and pagination.
func parseLists(f map[string]json.RawMessage, q *Query) *Error {
	var err *Error
	if q.Metrics, err = parseMetrics(f["metrics"]); err != nil {
		return err
	}
	if raw, ok := f["dimensions"]; ok {
		if q.Dimensions, err = parseDimensions(raw); err != nil {
			return err
		}
	}
	q.Filter = Filter{Op: And}
	if raw, ok := f["filters"]; ok {
		if q.Filter, err = parseFilters(raw); err != nil {
			return err
		}
	}
	if raw, ok := f["order_by"]; ok {
		if q.OrderBy, err = parseOrderBy(raw, q.Metrics, q.Dimensions); err != nil {
			return err
		}
	}
	if raw, ok := f["include"]; ok {
		if q.Include, err = parseInclude(raw); err != nil {
			return err
		}
	}
	if raw, ok := f["pagination"]; ok {
		if q.Limit, q.Offset, err = parsePagination(raw); err != nil {
			return err
		}
	}
	// An empty list is the same query as none: one form of each.
	if len(q.Dimensions) == 0 {
		q.Dimensions = nil
	}
	if len(q.OrderBy) == 0 {
		q.OrderBy = nil
	}
	if len(q.Filter.Children) == 0 {
		q.Filter.Children = nil
	}
	return nil
}

// object decodes a JSON object whose keys must be among allowed (JSON
// Schema's additionalProperties false; keys compare exactly, unlike
// encoding/json's struct fields).
func object(raw json.RawMessage, part string, allowed []string) (map[string]json.RawMessage, *Error) {
	raw = bytes.TrimSpace(raw)
	var f map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &f) != nil {
		return nil, errf(part, "must be a JSON object")
	}
	unknown := ""
	for k := range f {
		if !slices.Contains(allowed, k) && (unknown == "" || k < unknown) {
			unknown = k // the first in order, so the message does not vary
		}
	}
	if unknown != "" {
		return nil, errf(part, "unknown key "+strconv.Quote(unknown)+"; allowed: "+strings.Join(allowed, ", "))
	}
	return f, nil
}

func str(raw json.RawMessage, part string) (string, *Error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", errf(part, "must be a string")
	}
	return s, nil
}

func list(raw json.RawMessage, part string) ([]json.RawMessage, *Error) {
	var l []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &l) != nil {
		return nil, errf(part, "must be a list")
	}
	return l, nil
}

// integer reads a JSON integer within int64.
func integer(raw json.RawMessage) (int64, bool) {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

func boolean(raw json.RawMessage, part string) (bool, *Error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errf(part, "must be true or false")
}

// parseLocation loads an IANA time zone name. Local (the machine's zone)
// and file paths are refused: the answer must not depend on the host.
func parseLocation(raw json.RawMessage) (*time.Location, *Error) {
	name, err := str(raw, "timezone")
	if err != nil {
		return nil, err
	}
	ok := name != "" && len(name) <= 64 && name != "Local" && name[0] != '/' && !strings.Contains(name, "..")
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_+-/", c) >= 0
	}
	if !ok {
		return nil, errf("timezone", "must be an IANA time zone name such as Europe/Berlin")
	}
	loc, lerr := time.LoadLocation(name)
	if lerr != nil {
		return nil, errf("timezone", "unknown time zone "+strconv.Quote(name))
	}
	return loc, nil
}
