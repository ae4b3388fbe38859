package stats

import (
	"regexp"
	"strings"
)

// Op is a filter operator: a comparison of a leaf or a logical node.
type Op uint8

// The filter operators of the contract.
const (
	Is Op = iota + 1
	IsNot
	Contains
	ContainsNot
	Matches    // RE2, found anywhere in the value
	MatchesNot // RE2
	And
	Or
	Not
)

var opNames = [...]string{
	Is: "is", IsNot: "is_not", Contains: "contains", ContainsNot: "contains_not",
	Matches: "matches", MatchesNot: "matches_not", And: "and", Or: "or", Not: "not",
}

func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "op?"
}

func parseOp(s string) (Op, bool) {
	for o, name := range opNames {
		if name != "" && name == s {
			return Op(o), true
		}
	}
	return 0, false
}

// IsLeaf reports whether o compares a dimension with clauses.
func (o Op) IsLeaf() bool { return o >= Is && o <= MatchesNot }

// negated reports whether o holds when no clause matches.
func (o Op) negated() bool { return o == IsNot || o == ContainsNot || o == MatchesNot }

// Filter is a node of the filter tree. A leaf (Op.IsLeaf) compares the
// row's value of Dimension with Clauses; And and Or hold at least one
// child, Not exactly one. Query.Filter is an And of the body's top-level
// list, with no child when the body has no filter.
type Filter struct {
	Op        Op
	Dimension Dimension
	// Clauses are the values compared; JSON integers are held as their
	// decimal strings.
	Clauses []string
	// CaseSensitive is the modifier {"case_sensitive": bool} of
	// Plausible's newer API; true unless the body says false.
	CaseSensitive bool
	Children      []Filter

	folded []string         // Clauses in lower case, for contains without case
	res    []*regexp.Regexp // Matches and MatchesNot: one per clause, compiled by Parse
}

// Match evaluates f on one row; value returns the row's value of a
// dimension. Is compares whole values, Contains looks for a substring,
// Matches for a match of the expression anywhere in the value; without
// case sensitivity both sides are compared in lower case (and the
// expression gets (?i)). The _not operators hold when no clause does. The
// zero Filter, like an And without children, matches every row.
func Match(f Filter, value func(Dimension) string) bool {
	switch f.Op {
	case 0:
		return true
	case And:
		for _, c := range f.Children {
			if !Match(c, value) {
				return false
			}
		}
		return true
	case Or:
		for _, c := range f.Children {
			if Match(c, value) {
				return true
			}
		}
		return false
	case Not:
		return len(f.Children) == 1 && !Match(f.Children[0], value)
	}
	if !f.Op.IsLeaf() {
		return false
	}
	return f.anyClause(value(f.Dimension)) != f.Op.negated()
}

// anyClause reports whether v satisfies one of f's clauses under f's
// comparison (is, contains or matches, whatever the negation).
func (f Filter) anyClause(v string) bool {
	switch f.Op {
	case Is, IsNot:
		for _, c := range f.Clauses {
			if c == v || !f.CaseSensitive && strings.EqualFold(c, v) {
				return true
			}
		}
	case Contains, ContainsNot:
		clauses := f.Clauses
		if !f.CaseSensitive {
			v, clauses = strings.ToLower(v), f.folded
		}
		for _, c := range clauses {
			if strings.Contains(v, c) {
				return true
			}
		}
	case Matches, MatchesNot:
		for _, re := range f.res {
			if re.MatchString(v) {
				return true
			}
		}
	}
	return false
}

// walk calls fn for each leaf of f, with whether it is a direct
// child of the root (a top-level filter of the body).
func (f Filter) walk(fn func(leaf Filter, top bool)) { f.walkDepth(fn, 0) }

func (f Filter) walkDepth(fn func(Filter, bool), depth int) {
	if f.Op.IsLeaf() {
		fn(f, depth == 1)
		return
	}
	for _, c := range f.Children {
		c.walkDepth(fn, depth+1)
	}
}

// Uses reports whether a leaf of f compares dimension kind k.
func (f Filter) Uses(k DimensionKind) bool {
	found := false
	f.walk(func(leaf Filter, _ bool) { found = found || leaf.Dimension.Kind == k })
	return found
}

// json is the filter as the body writes it, for Query.Resolved.
func (f Filter) json() []any {
	switch f.Op {
	case And, Or:
		children := make([]any, len(f.Children))
		for i, c := range f.Children {
			children[i] = c.json()
		}
		return []any{f.Op.String(), children}
	case Not:
		return []any{"not", f.Children[0].json()}
	}
	out := []any{f.Op.String(), f.Dimension.String(), f.Clauses}
	if !f.CaseSensitive {
		out = append(out, map[string]bool{"case_sensitive": false})
	}
	return out
}
