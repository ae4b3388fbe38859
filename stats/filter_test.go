package stats

import "testing"

// row is one row's values by dimension name.
type row map[string]string

func (r row) value(d Dimension) string { return r[d.String()] }

func TestMatch(t *testing.T) {
	type want struct {
		row   row
		match bool
	}
	tests := []struct {
		name, filters string
		rows          []want
	}{
		{"no filter matches everything", `[]`, []want{{row{}, true}, {row{"event:page": "/x"}, true}}},
		{"is", `[["is","event:page",["/a","/b"]]]`, []want{
			{row{"event:page": "/a"}, true}, {row{"event:page": "/b"}, true},
			{row{"event:page": "/a/"}, false}, {row{"event:page": "/A"}, false}, {row{}, false}}},
		{"is without case", `[["is","event:page",["/a"],{"case_sensitive":false}]]`, []want{
			{row{"event:page": "/A"}, true}, {row{"event:page": "/a"}, true}, {row{"event:page": "/ab"}, false}}},
		{"is_not", `[["is_not","event:page",["/a","/b"]]]`, []want{
			{row{"event:page": "/a"}, false}, {row{"event:page": "/b"}, false}, {row{"event:page": "/c"}, true}, {row{}, true}}},
		{"integer clause", `[["is","event:props:code",[404]]]`, []want{
			{row{"event:props:code": "404"}, true}, {row{"event:props:code": "4040"}, false}}},
		{"contains", `[["contains","visit:source",["oogle","bing"]]]`, []want{
			{row{"visit:source": "Google"}, true}, {row{"visit:source": "bing.com"}, true},
			{row{"visit:source": "GOOGLE"}, false}, {row{"visit:source": "Direct / None"}, false}}},
		{"contains without case", `[["contains","visit:source",["OOGLE"],{"case_sensitive":false}]]`, []want{
			{row{"visit:source": "Google"}, true}, {row{"visit:source": "GOOGLE"}, true}, {row{"visit:source": "Bing"}, false}}},
		{"contains_not", `[["contains_not","event:page",["/blog"]]]`, []want{
			{row{"event:page": "/blog/1"}, false}, {row{"event:page": "/docs"}, true}, {row{"event:page": "/BLOG"}, true}}},
		{"contains_not without case", `[["contains_not","event:page",["/blog"],{"case_sensitive":false}]]`, []want{
			{row{"event:page": "/BLOG"}, false}, {row{"event:page": "/docs"}, true}}},
		{"matches finds anywhere", `[["matches","event:page",["^/blog/[0-9]+$","pricing"]]]`, []want{
			{row{"event:page": "/blog/12"}, true}, {row{"event:page": "/blog/x"}, false},
			{row{"event:page": "/en/pricing/"}, true}, {row{"event:page": "/Pricing"}, false}}},
		{"matches without case", `[["matches","event:page",["^/blog"],{"case_sensitive":false}]]`, []want{
			{row{"event:page": "/BLOG/1"}, true}, {row{"event:page": "/x/blog"}, false}}},
		{"matches_not", `[["matches_not","event:page",["^/a","^/b"]]]`, []want{
			{row{"event:page": "/a1"}, false}, {row{"event:page": "/b1"}, false}, {row{"event:page": "/c"}, true}}},
		{"top level is and", `[["is","event:page",["/a"]],["is","visit:device",["Mobile"]]]`, []want{
			{row{"event:page": "/a", "visit:device": "Mobile"}, true},
			{row{"event:page": "/a", "visit:device": "Desktop"}, false},
			{row{"event:page": "/b", "visit:device": "Mobile"}, false}}},
		{"or", `[["or",[["is","event:page",["/a"]],["is","visit:device",["Mobile"]]]]]`, []want{
			{row{"event:page": "/a", "visit:device": "Desktop"}, true},
			{row{"event:page": "/b", "visit:device": "Mobile"}, true},
			{row{"event:page": "/b", "visit:device": "Desktop"}, false}}},
		{"not", `[["not",["is","event:page",["/a"]]]]`, []want{
			{row{"event:page": "/a"}, false}, {row{"event:page": "/b"}, true}}},
		{"and inside or inside not", `[["not",["or",[["and",[["is","event:page",["/a"]],["contains","visit:referrer",["x"]]]],["is","visit:device",["Tablet"]]]]]]`, []want{
			{row{"event:page": "/a", "visit:referrer": "x.com", "visit:device": "Mobile"}, false},
			{row{"event:page": "/a", "visit:referrer": "y.com", "visit:device": "Mobile"}, true},
			{row{"event:page": "/b", "visit:referrer": "x.com", "visit:device": "Tablet"}, false},
			{row{"event:page": "/b", "visit:referrer": "x.com", "visit:device": "Mobile"}, true}}},
		{"not not", `[["not",["not",["is","event:goal",["signup"]]]]]`, nil}, // goal is top-level only: refused, see below
		{"props", `[["is","event:props:plan",["pro"]],["is_not","event:props:tier",["free"]]]`, []want{
			{row{"event:props:plan": "pro", "event:props:tier": "paid"}, true},
			{row{"event:props:plan": "pro", "event:props:tier": "free"}, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse(body(t, `{"filters":`+tt.filters+`}`), now)
			if tt.rows == nil {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.rows {
				if got := Match(q.Filter, w.row.value); got != w.match {
					t.Errorf("row %v: match %v, want %v", w.row, got, w.match)
				}
			}
		})
	}
}

func TestMatchZeroFilter(t *testing.T) {
	if !Match(Filter{}, row{}.value) {
		t.Error("the zero Filter refuses a row")
	}
}

func TestMatchTruthTable(t *testing.T) {
	// Every combination of two leaves under and, or and not, against the
	// boolean formula.
	leaf := func(v string) string { return `["is","event:props:` + v + `",["1"]]` }
	forms := []struct {
		filters string
		eval    func(a, b bool) bool
	}{
		{`[` + leaf("a") + `,` + leaf("b") + `]`, func(a, b bool) bool { return a && b }},
		{`[["and",[` + leaf("a") + `,` + leaf("b") + `]]]`, func(a, b bool) bool { return a && b }},
		{`[["or",[` + leaf("a") + `,` + leaf("b") + `]]]`, func(a, b bool) bool { return a || b }},
		{`[["not",["and",[` + leaf("a") + `,` + leaf("b") + `]]]]`, func(a, b bool) bool { return !(a && b) }},
		{`[["not",["or",[` + leaf("a") + `,` + leaf("b") + `]]]]`, func(a, b bool) bool { return !(a || b) }},
		{`[["or",[["not",` + leaf("a") + `],` + leaf("b") + `]]]`, func(a, b bool) bool { return !a || b }},
		{`[["or",[` + leaf("a") + `]],["not",` + leaf("b") + `]]`, func(a, b bool) bool { return a && !b }},
	}
	str := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	for _, f := range forms {
		q := mustParse(t, `{"filters":`+f.filters+`}`, now)
		for _, a := range []bool{false, true} {
			for _, b := range []bool{false, true} {
				r := row{"event:props:a": str(a), "event:props:b": str(b)}
				if got := Match(q.Filter, r.value); got != f.eval(a, b) {
					t.Errorf("%s with a=%v b=%v: %v", f.filters, a, b, got)
				}
			}
		}
	}
}
