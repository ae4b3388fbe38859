package redisagg

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// hashTag is the shape of a hash-tagged key part, ":{TAG}:".
var hashTag = regexp.MustCompile(`:\{[^{}"]*\}:`)

// isKeyLiteral reports whether a string constant spells (part of) a Redis
// key of Pulse's layout: a key or prefix ("p:..."), a hash-tagged part
// (":{lease}:", ":{*}:"), or the two halves of a tag around a value built
// at run time (":{" + site + "}:"). JSON pieces such as `"props":{` hold a
// quote, which no key fragment does.
func isKeyLiteral(s string) bool {
	switch {
	case strings.HasPrefix(s, "p:"), hashTag.MatchString(s):
		return true
	case strings.Contains(s, `"`):
		return false
	default:
		return strings.HasSuffix(s, ":{") || strings.HasPrefix(s, "}:")
	}
}

// TestIsKeyLiteral pins what the layout check calls a key literal.
func TestIsKeyLiteral(t *testing.T) {
	cases := []struct {
		s    string
		want bool
	}{
		{"p:{archive}:ck", true},
		{"p:", true},
		{"p:v1:*", true},
		{":{lease}:", true},
		{":{*}:c:*", true},
		{"%s:{%s}:ck", true},
		{":{", true},
		{"}:", true},
		{"}:u:", true},
		{`,"props":{`, false},
		{`{"id":1,"connect":{}}`, false},
		{"{lease}", false},
		{"pos", false},
		{"http://x", false},
		{"", false},
	}
	for _, c := range cases {
		if got := isKeyLiteral(c.s); got != c.want {
			t.Errorf("isKeyLiteral(%q) = %v, want %v", c.s, got, c.want)
		}
	}
}

// TestLuaKeyLiterals checks the Lua scan finds key strings in code, quoted
// either way, and not in comments.
func TestLuaKeyLiterals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.lua")
	src := strings.Join([]string{
		`local k = KEYS[1]`,
		`redis.call('GET', "p:v1:{demo}:ck")`,
		`-- redis.call('GET', 'p:v1:{demo}:ck')`,
		`local x = 'a' .. ':{' .. ARGV[1] .. '}:' -- "p:"`,
		`redis.call('HSET', k, "--", 'p:x')`,
	}, "\n")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	want := []string{`2: "p:v1:{demo}:ck"`, `4: ':{'`, `4: '}:'`, `5: 'p:x'`}
	if got := luaKeyLiterals(t, path); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("found %q, want %q", got, want)
	}
}

// TestKeyLiteralsStayInRedisagg fails on a key literal in any non-test Go
// file or Lua script of the module outside this package: redisagg owns the
// layout (Keys), so a key built elsewhere would drift from it. There are no
// exceptions; comments may still describe keys.
func TestKeyLiteralsStayInRedisagg(t *testing.T) {
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	root := moduleRoot(t, here)
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return skipDir(root, here, path, d.Name())
		}
		rel, _ := filepath.Rel(root, path)
		switch {
		case strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go"):
			checked++
			for _, f := range goKeyLiterals(t, path) {
				t.Errorf("%s:%s: Redis key literal outside redisagg; build it with redisagg.Keys", rel, f)
			}
		case strings.HasSuffix(path, ".lua"):
			checked++
			for _, f := range luaKeyLiterals(t, path) {
				t.Errorf("%s:%s: Redis key literal outside redisagg; pass the key in KEYS", rel, f)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked only %d files under %s: the walk missed the module", checked, root)
	}
}

// moduleRoot walks up from dir to the directory holding go.mod.
func moduleRoot(t *testing.T, dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}

// skipDir leaves out this package, what the go tool ignores (testdata,
// dot and underscore directories), dependencies and nested modules.
func skipDir(root, here, path, name string) error {
	if path == root {
		return nil
	}
	if path == here || name == "testdata" || name == "vendor" || name == "node_modules" ||
		strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
		return filepath.SkipDir
	}
	if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
		return filepath.SkipDir
	}
	return nil
}

// goKeyLiterals returns "line: literal" for each key literal in a Go file.
func goKeyLiterals(t *testing.T, path string) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			t.Fatalf("%s: unquote %s: %v", fset.Position(lit.Pos()), lit.Value, err)
		}
		if isKeyLiteral(s) {
			found = append(found, strconv.Itoa(fset.Position(lit.Pos()).Line)+": "+lit.Value)
		}
		return true
	})
	return found
}

// luaString is a one-line Lua string constant, quoted either way.
var luaString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)

// luaKeyLiterals returns "line: literal" for each key literal in a Lua
// script, outside comments.
func luaKeyLiterals(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for i, line := range strings.Split(string(b), "\n") {
		from := 0
		for _, m := range luaString.FindAllStringIndex(line, -1) {
			if strings.Contains(line[from:m[0]], "--") {
				break // the rest of the line is a comment
			}
			if q := line[m[0]:m[1]]; isKeyLiteral(q[1 : len(q)-1]) {
				found = append(found, strconv.Itoa(i+1)+": "+q)
			}
			from = m[1]
		}
	}
	return found
}
