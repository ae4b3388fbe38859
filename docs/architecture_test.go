package docs_test

import (
	"bufio"
	"errors"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/pulsehq/pulse/"

// TestPackageMap checks the layering documented in architecture.md's
// "Package map" against the code: every package is listed, every listed
// package exists, and a package imports only the module packages its row
// allows. The document is the rule; a new import edge is a change to both.
func TestPackageMap(t *testing.T) {
	allowed := readPackageMap(t, "architecture.md")
	actual := modulePackages(t, "..")

	for pkg, imports := range actual {
		may, ok := allowed[pkg]
		if !ok {
			t.Errorf("package %s is not in architecture.md's package map", pkg)
			continue
		}
		for _, imp := range imports {
			if !slices.Contains(may, imp) {
				t.Errorf("%s imports %s, which its row in architecture.md's package map does not allow", pkg, imp)
			}
		}
	}
	for pkg := range allowed {
		if _, ok := actual[pkg]; !ok {
			t.Errorf("architecture.md's package map lists %s, which is not a package", pkg)
		}
	}
}

// rowPattern matches a package-map row: | `pkg` | what it is | `a`, `b` |
var rowPattern = regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|[^|]+\\|([^|]*)\\|\\s*$")

var quoted = regexp.MustCompile("`([^`]+)`")

// readPackageMap returns, per package, the module packages it may import.
func readPackageMap(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	out := map[string][]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = strings.TrimSpace(line) == "## Package map"
			continue
		}
		if !in {
			continue
		}
		m := rowPattern.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var may []string
		for _, q := range quoted.FindAllStringSubmatch(m[2], -1) {
			may = append(may, q[1])
		}
		out[m[1]] = may
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if len(out) == 0 {
		t.Fatalf("%s has no \"## Package map\" table", path)
	}
	return out
}

// modulePackages returns every package under root with the module packages
// its non-test files import (paths relative to the module).
func modulePackages(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		p, err := build.Default.ImportDir(path, 0)
		if err != nil {
			var noGo *build.NoGoError
			if errors.As(err, &noGo) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if rel == "." || len(p.GoFiles) == 0 {
			return nil // the tools.go pin; test-only packages (systemtest)
		}
		var imports []string
		for _, imp := range p.Imports {
			if s, ok := strings.CutPrefix(imp, module); ok {
				imports = append(imports, s)
			}
		}
		out[filepath.ToSlash(rel)] = imports
		return nil
	})
	if err != nil {
		t.Fatalf("walk packages: %v", err)
	}
	return out
}

// longFuncs are the functions allowed over maxFuncLines: hand-written
// parsers, one state machine each, read best in one piece.
var longFuncs = map[string]string{
	"event/object.go props":               "the props object parser",
	"event/parse.go skip":                 "skips one JSON value of any kind",
	"push/message.go DecodeClientMessage": "the client message parser",
}

const maxFuncLines = 80

// TestFunctionLength keeps every function of the module's non-test code
// at most maxFuncLines long, but the parsers in longFuncs.
func TestFunctionLength(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != ".." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("..", path)
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
			name := filepath.ToSlash(rel) + " " + fd.Name.Name
			if _, ok := longFuncs[name]; n > maxFuncLines && !ok {
				t.Errorf("%s:%d: %s is %d lines, over %d: split it into named steps", rel, fset.Position(fd.Pos()).Line, fd.Name.Name, n, maxFuncLines)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk sources: %v", err)
	}
}
