package stats

import (
	"encoding/json"
	"strconv"
)

func parseMetrics(raw json.RawMessage) ([]Metric, *Error) {
	l, err := list(raw, "metrics")
	if err != nil {
		return nil, err
	}
	if len(l) == 0 || len(l) > MaxMetrics {
		return nil, errf("metrics", "must hold 1 to "+strconv.Itoa(MaxMetrics)+" metrics")
	}
	out := make([]Metric, len(l))
	for i, r := range l {
		part := indexPart("metrics", i)
		s, err := str(r, part)
		if err != nil {
			return nil, err
		}
		m, perr := ParseMetric(s)
		if perr != nil {
			return nil, errf(part, perr.Error())
		}
		for _, prev := range out[:i] {
			if prev == m {
				return nil, errf(part, strconv.Quote(s)+" is listed twice")
			}
		}
		out[i] = m
	}
	return out, nil
}

func parseDimensions(raw json.RawMessage) ([]Dimension, *Error) {
	l, err := list(raw, "dimensions")
	if err != nil {
		return nil, err
	}
	if len(l) > MaxDimensions {
		return nil, errf("dimensions", "must hold at most "+strconv.Itoa(MaxDimensions)+" dimensions")
	}
	out := make([]Dimension, len(l))
	for i, r := range l {
		part := indexPart("dimensions", i)
		s, err := str(r, part)
		if err != nil {
			return nil, err
		}
		d, perr := ParseDimension(s)
		if perr != nil {
			return nil, errf(part, perr.Error())
		}
		for _, prev := range out[:i] {
			if prev == d {
				return nil, errf(part, strconv.Quote(s)+" is listed twice")
			}
			if prev.IsTime() && d.IsTime() {
				return nil, errf(part, "only one time dimension is allowed")
			}
		}
		out[i] = d
	}
	return out, nil
}

// parseOrderBy reads [[name, "asc"|"desc"], ...]; every name must be a
// metric or a dimension of the query, each at most once.
func parseOrderBy(raw json.RawMessage, metrics []Metric, dims []Dimension) ([]Order, *Error) {
	l, err := list(raw, "order_by")
	if err != nil {
		return nil, err
	}
	out := make([]Order, 0, len(l))
	for i, r := range l {
		part := indexPart("order_by", i)
		pair, err := list(r, part)
		if err != nil || len(pair) != 2 {
			return nil, errf(part, "must be a list of a metric or dimension and \"asc\" or \"desc\"")
		}
		name, err := str(pair[0], part+"[0]")
		if err != nil {
			return nil, err
		}
		o, ok := findOrder(name, metrics, dims)
		if !ok {
			_, merr := ParseMetric(name)
			_, derr := ParseDimension(name)
			if merr != nil && derr != nil {
				return nil, errf(part+"[0]", "unknown metric or dimension "+strconv.Quote(name))
			}
			return nil, errf(part+"[0]", strconv.Quote(name)+" is not one of the query's metrics or dimensions")
		}
		dir, err := str(pair[1], part+"[1]")
		if err != nil || dir != "asc" && dir != "desc" {
			return nil, errf(part+"[1]", "must be \"asc\" or \"desc\"")
		}
		o.Desc = dir == "desc"
		for _, prev := range out {
			if prev.Metric == o.Metric && prev.Index == o.Index {
				return nil, errf(part+"[0]", strconv.Quote(name)+" is ordered by twice")
			}
		}
		out = append(out, o)
	}
	return out, nil
}

func findOrder(name string, metrics []Metric, dims []Dimension) (Order, bool) {
	for i, m := range metrics {
		if m.String() == name {
			return Order{Metric: true, Index: i}, true
		}
	}
	for i, d := range dims {
		if d.String() == name {
			return Order{Index: i}, true
		}
	}
	return Order{}, false
}

func parseInclude(raw json.RawMessage) (Include, *Error) {
	f, err := object(raw, "include", []string{"total_rows", "time_labels", "imports"})
	if err != nil {
		return Include{}, err
	}
	var inc Include
	for _, k := range []string{"total_rows", "time_labels", "imports"} {
		v, ok := f[k]
		if !ok {
			continue
		}
		b, err := boolean(v, "include."+k)
		if err != nil {
			return Include{}, err
		}
		switch k {
		case "total_rows":
			inc.TotalRows = b
		case "time_labels":
			inc.TimeLabels = b
		default:
			inc.Imports = b
		}
	}
	return inc, nil
}

func parsePagination(raw json.RawMessage) (limit, offset int, err *Error) {
	f, err := object(raw, "pagination", []string{"limit", "offset"})
	if err != nil {
		return 0, 0, err
	}
	limit = MaxLimit
	if v, ok := f["limit"]; ok {
		n, ok := integer(v)
		if !ok || n < 1 || n > MaxLimit {
			return 0, 0, errf("pagination.limit", "must be an integer from 1 to "+strconv.Itoa(MaxLimit))
		}
		limit = int(n)
	}
	if v, ok := f["offset"]; ok {
		n, ok := integer(v)
		if !ok || n < 0 || n > MaxOffset {
			return 0, 0, errf("pagination.offset", "must be an integer from 0 to "+strconv.Itoa(MaxOffset))
		}
		offset = int(n)
	}
	return limit, offset, nil
}
