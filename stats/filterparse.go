package stats

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
)

// filterParser reads the filter tree, counting nodes and clauses over the
// whole tree against MaxFilterNodes and MaxClauses.
type filterParser struct {
	nodes, values int
}

// parseFilters reads the top-level list, an implicit and.
func parseFilters(raw json.RawMessage) (Filter, *Error) {
	l, err := list(raw, "filters")
	if err != nil {
		return Filter{}, err
	}
	var p filterParser
	root := Filter{Op: And, Children: make([]Filter, len(l))}
	for i, r := range l {
		if root.Children[i], err = p.node(r, indexPart("filters", i), 1); err != nil {
			return Filter{}, err
		}
	}
	return root, nil
}

func (p *filterParser) node(raw json.RawMessage, part string, depth int) (Filter, *Error) {
	if depth > MaxFilterDepth {
		return Filter{}, errf(part, "filters nest deeper than "+strconv.Itoa(MaxFilterDepth))
	}
	if p.nodes++; p.nodes > MaxFilterNodes {
		return Filter{}, errf(part, "more than "+strconv.Itoa(MaxFilterNodes)+" filters in all")
	}
	l, err := list(raw, part)
	if err != nil || len(l) == 0 {
		return Filter{}, errf(part, "a filter must be a list: [op, dimension, [values...]], [\"and\"|\"or\", [filters...]] or [\"not\", filter]")
	}
	name, err := str(l[0], part+"[0]")
	if err != nil {
		return Filter{}, err
	}
	op, ok := parseOp(name)
	if !ok {
		return Filter{}, errf(part+"[0]", "unknown operator "+strconv.Quote(name)+
			"; one of is, is_not, contains, contains_not, matches, matches_not, and, or, not")
	}
	switch op {
	case And, Or:
		if len(l) != 2 {
			return Filter{}, errf(part, "must be [\""+name+"\", [filters...]]")
		}
		children, err := list(l[1], part+"[1]")
		if err != nil || len(children) == 0 {
			return Filter{}, errf(part+"[1]", "must be a list of at least one filter")
		}
		f := Filter{Op: op, Children: make([]Filter, len(children))}
		for i, c := range children {
			if f.Children[i], err = p.node(c, part+"[1]"+indexPart("", i), depth+1); err != nil {
				return Filter{}, err
			}
		}
		return f, nil
	case Not:
		if len(l) != 2 {
			return Filter{}, errf(part, "must be [\"not\", filter]")
		}
		child, err := p.node(l[1], part+"[1]", depth+1)
		if err != nil {
			return Filter{}, err
		}
		return Filter{Op: Not, Children: []Filter{child}}, nil
	}
	return p.leaf(op, l, part, depth)
}

// leaf reads [op, dimension, [clauses...]] with an optional fourth
// element {"case_sensitive": bool}.
func (p *filterParser) leaf(op Op, l []json.RawMessage, part string, depth int) (Filter, *Error) {
	if len(l) != 3 && len(l) != 4 {
		return Filter{}, errf(part, "must be [op, dimension, [values...]] with an optional {\"case_sensitive\": bool}")
	}
	f := Filter{Op: op, CaseSensitive: true}
	dimPart := part + "[1]"
	name, err := str(l[1], dimPart)
	if err != nil {
		return Filter{}, err
	}
	var derr error
	if f.Dimension, derr = ParseDimension(name); derr != nil {
		return Filter{}, errf(dimPart, derr.Error())
	}
	switch {
	case f.Dimension.IsTime():
		return Filter{}, errf(dimPart, "cannot filter on "+strconv.Quote(name)+"; narrow date_range instead")
	case (f.Dimension.Kind == Goal || f.Dimension.Kind == Hostname) && depth != 1:
		// Plausible's rule: these are filtered at the top level only.
		return Filter{}, errf(dimPart, strconv.Quote(name)+" can only be filtered at the top level, not inside and, or or not")
	}
	if len(l) == 4 {
		mods, err := object(l[3], part+"[3]", []string{"case_sensitive"})
		if err != nil {
			return Filter{}, err
		}
		if v, ok := mods["case_sensitive"]; ok {
			if f.CaseSensitive, err = boolean(v, part+"[3].case_sensitive"); err != nil {
				return Filter{}, err
			}
		}
	}
	if f.Clauses, err = p.clauses(l[2], part+"[2]", f); err != nil {
		return Filter{}, err
	}
	if !f.CaseSensitive {
		f.folded = make([]string, len(f.Clauses))
		for i, c := range f.Clauses {
			f.folded[i] = strings.ToLower(c)
		}
	}
	if op == Matches || op == MatchesNot {
		if f.res, err = compile(f.Clauses, part+"[2]", f.CaseSensitive); err != nil {
			return Filter{}, err
		}
	}
	return f, nil
}

// clauses reads the values of a leaf: strings, or integers held as their
// decimal strings.
func (p *filterParser) clauses(raw json.RawMessage, part string, f Filter) ([]string, *Error) {
	l, err := list(raw, part)
	if err != nil || len(l) == 0 {
		return nil, errf(part, "must be a list of at least one value")
	}
	if p.values += len(l); p.values > MaxClauses {
		return nil, errf(part, "more than "+strconv.Itoa(MaxClauses)+" values in all filters")
	}
	out := make([]string, len(l))
	for i, r := range l {
		cpart := part + indexPart("", i)
		if n, ok := integer(r); ok {
			out[i] = strconv.FormatInt(n, 10)
		} else if out[i], err = str(r, cpart); err != nil {
			return nil, errf(cpart, "must be a string or an integer")
		}
		if len(out[i]) > MaxClauseBytes {
			return nil, errf(cpart, "longer than "+strconv.Itoa(MaxClauseBytes)+" bytes")
		}
		if f.Dimension.Kind == Country && (f.Op == Is || f.Op == IsNot) && !isCountryCode(out[i]) {
			return nil, errf(cpart, "visit:country needs 2-letter country codes (ISO 3166 alpha-2), not "+strconv.Quote(out[i]))
		}
	}
	return out, nil
}

func isCountryCode(s string) bool {
	letter := func(c byte) bool { return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' }
	return len(s) == 2 && letter(s[0]) && letter(s[1])
}

// compile compiles each clause as RE2 once, at parse.
func compile(clauses []string, part string, caseSensitive bool) ([]*regexp.Regexp, *Error) {
	out := make([]*regexp.Regexp, len(clauses))
	for i, c := range clauses {
		cpart := part + indexPart("", i)
		if len(c) > MaxRegexBytes {
			return nil, errf(cpart, "regular expression longer than "+strconv.Itoa(MaxRegexBytes)+" bytes")
		}
		expr := c
		if !caseSensitive {
			expr = "(?i)" + c
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, errf(cpart, "invalid regular expression: "+err.Error())
		}
		out[i] = re
	}
	return out, nil
}
