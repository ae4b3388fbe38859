package metric

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestDocsExample loads the commented example config of docs/ and checks
// that it defines what its comments promise, and that the docs point to it.
func TestDocsExample(t *testing.T) {
	path := filepath.Join("..", "docs", "metrics.example.yaml")
	defs, steps, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(steps, DefaultSteps()) {
		t.Errorf("steps %+v, want the defaults written out", steps)
	}
	want := append(Builtins(),
		Def{Name: "signups", Kind: Count, Types: []string{"signup"}, Dims: []string{"props.plan", "referrer", "path"}},
		Def{Name: "buyers", Kind: Unique, Field: "uid", Types: []string{"purchase"}},
		Def{Name: "revenue", Kind: Sum, Field: "props.price", Decimals: 2, Types: []string{"purchase"}, Dims: []string{"props.plan", "device"}},
		Def{Name: "order_value", Kind: Avg, Field: "props.price", Decimals: DefaultDecimals, Types: []string{"purchase"}, Dims: []string{"props.plan"}},
		Def{Name: "crawler_hits", Kind: Count, BotsOnly: true, Dims: []string{"type", "path", "device"}},
	)
	if !reflect.DeepEqual(defs, want) {
		t.Errorf("metrics:\n got %+v\nwant %+v", defs, want)
	}
	// Every kind, and every kind of dimension, is shown.
	kinds, dims := map[Kind]bool{}, map[string]bool{}
	for _, d := range defs {
		kinds[d.Kind] = true
		for _, x := range d.Dims {
			if strings.HasPrefix(x, PropPrefix) {
				x = PropPrefix + "NAME"
			}
			dims[x] = true
		}
	}
	for _, k := range []Kind{Count, Unique, Sum, Avg} {
		if !kinds[k] {
			t.Errorf("no %s metric", k)
		}
	}
	for _, x := range []string{"type", "path", "referrer", "device", "props.NAME"} {
		if !dims[x] {
			t.Errorf("no dimension %s", x)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"steps:", "builtins:", "bots_only:", "decimals:", "types:", "field:"} {
		if !strings.Contains(string(data), key) {
			t.Errorf("the example does not show %s", key)
		}
	}
	api, err := os.ReadFile(filepath.Join("..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(api), "docs/metrics.example.yaml") {
		t.Errorf("docs/api.md does not point to docs/metrics.example.yaml")
	}
}
