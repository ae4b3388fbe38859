package metric

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/event"
)

func TestLoadConfig(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		file  string
		defs  []Def
		steps []Step
	}{
		{
			file: "metrics.yaml",
			steps: []Step{
				{Name: "10s", Width: 10 * time.Second, Retention: 6 * time.Hour},
				{Name: "1m", Width: time.Minute, Retention: 3 * day},
				{Name: "1d", Width: day, Retention: 400 * day},
			},
			defs: []Def{
				{Name: "signups", Kind: Count, Types: []string{"signup"}, Dims: []string{"plan", "path"}},
				{Name: "buyers", Kind: Unique, Field: "uid", Types: []string{"purchase", "checkout.done"}},
				{Name: "bot_hits", Kind: Count, BotsOnly: true, Dims: []string{"device", "referrer"}},
				{Name: "revenue", Kind: Sum, Field: "props.price", Decimals: 2, Types: []string{"purchase"}, Dims: []string{"props.plan"}},
				{Name: "basket", Kind: Avg, Field: "props.items", Decimals: 0, Types: []string{"purchase"}},
			},
		},
		{
			file:  "builtins.yaml",
			steps: DefaultSteps(),
			defs:  append(Builtins(), Def{Name: "signups", Kind: Count, Types: []string{"signup"}}),
		},
		{file: "empty.yaml", steps: DefaultSteps(), defs: Builtins()},
		{
			file:  "steps_only.yaml",
			steps: []Step{{Name: "5m", Width: 5 * time.Minute, Retention: 2 * day}},
			defs:  Builtins(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			defs, steps, err := LoadConfig(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(defs, tt.defs) {
				t.Errorf("defs:\n got %+v\nwant %+v", defs, tt.defs)
			}
			if !reflect.DeepEqual(steps, tt.steps) {
				t.Errorf("steps:\n got %+v\nwant %+v", steps, tt.steps)
			}
		})
	}
}

func TestLoadConfigInvalid(t *testing.T) {
	const known = "(known: name, kind, types, dimensions, field, decimals, bots_only)"
	tests := []struct {
		file string
		want string // the error, without the "testdata/invalid/" prefix of each line
	}{
		{"bad_kind", `bad_kind.yaml:5: metrics[1].kind: "counter" is not count, unique, sum or avg`},
		{"bad_width", `bad_width.yaml:3: steps[0].width: "10x" is not a duration`},
		{"unknown_field", `unknown_field.yaml:4: metrics[0].dimension: unknown field ` + known},
		{"unknown_top", `unknown_top.yaml:1: metric: unknown field (known: steps, metrics, builtins)`},
		{"duplicate_name", `duplicate_name.yaml:4: metrics[2].name: "signups" defined twice (first at line 2)`},
		{"builtin_name", `builtin_name.yaml:3: metrics[0].name: "pageviews" is a built-in metric`},
		{"bad_metric_name", `bad_metric_name.yaml:2: metrics[0].name: "Sign-ups" must match [a-z0-9_]{1,64}`},
		{"bad_dimension", `bad_dimension.yaml:4: metrics[0].dimensions[1]: "utm source" must match [a-z0-9_.]{1,64}`},
		{"duplicate_dimension", `duplicate_dimension.yaml:6: metrics[0].dimensions[1]: "plan" listed twice`},
		{"bad_type", `bad_type.yaml:2: metrics[0].types[0]: "Sign\tUp" must match 1 to 120 bytes of UTF-8 without control characters`},
		{"unique_no_field", `unique_no_field.yaml:2: metrics[0]: a unique metric needs a field (like field: uid)`},
		{"unique_dimensions", `unique_dimensions.yaml:2: metrics[0].dimensions: a unique metric has no dimensions`},
		{"count_field", `count_field.yaml:2: metrics[0].field: a count metric has no field (unique, sum and avg metrics have one)`},
		{"sum_no_field", `sum_no_field.yaml:2: metrics[0]: a sum metric needs a field (like field: props.price)`},
		{"sum_not_prop", `sum_not_prop.yaml:4: metrics[0].field: "path" is no prop; avg metrics add a numeric prop (like field: props.price)`},
		{"bad_decimals", `bad_decimals.yaml:5: metrics[0].decimals: "7" is not a whole number from 0 to 6`},
		{"count_decimals", `count_decimals.yaml:4: metrics[0].decimals: only a sum or avg metric has decimals`},
		{"empty_prop", `empty_prop.yaml:4: metrics[0].dimensions[1]: "props." names no prop (like props.plan)`},
		{"missing_kind", `missing_kind.yaml:2: metrics[0]: kind is required`},
		{"not_a_string", `not_a_string.yaml:2: metrics[0].name: 123 is not a string; write "123"`},
		{"not_a_list", `not_a_list.yaml:2: metrics: expected a list, got a mapping`},
		{"empty_metrics", `empty_metrics.yaml:1: metrics: empty list; leave metrics out to keep the built-in metrics`},
		{"no_metrics", `no_metrics.yaml:1: builtins: false leaves no metrics; add a metrics list`},
		{"bad_bool", `bad_bool.yaml:1: builtins: "yes" is not true or false`},
		{"step_not_whole_seconds", `step_not_whole_seconds.yaml:2: steps[0].width: "1500ms" is not a whole number of seconds`},
		{"step_too_short", `step_too_short.yaml:2: steps[0].retention: "10ms" is less than 1s`},
		{"duplicate_step", `duplicate_step.yaml:3: steps[1].name: "1m" defined twice (first at line 2)`},
		{"duplicate_key", `duplicate_key.yaml:4: metrics[0].kind: given twice (first at line 3)`},
		{"alias", `alias.yaml:3: metrics[1]: expected a mapping with name, kind, types, dimensions, field, decimals, bots_only, got an alias (aliases are not supported)`},
		// The YAML parser gives the line where the broken block starts.
		{"syntax", `syntax.yaml:1: did not find expected '-' indicator`},
		{"two_documents", `two_documents.yaml:3: more than one YAML document`},
		{"not_a_mapping", `not_a_mapping.yaml:1: expected a mapping with steps, metrics, builtins, got a list`},
		{"many_errors", strings.Join([]string{
			`many_errors.yaml:2: steps[0].width: "10x" is not a duration`,
			`many_errors.yaml:2: steps[0].retention: "forever" is not a duration`,
			`many_errors.yaml:4: metrics[0].name: "Signups" must match [a-z0-9_]{1,64}`,
			`many_errors.yaml:5: metrics[0].kind: "counter" is not count, unique, sum or avg`,
			`many_errors.yaml:6: metrics[0].colour: unknown field ` + known,
			`many_errors.yaml:7: metrics[1]: name is required`,
			`many_errors.yaml:7: metrics[1]: a unique metric needs a field (like field: uid)`,
		}, "\n")},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file+".yaml"] = true
		t.Run(tt.file, func(t *testing.T) {
			dir := filepath.Join("testdata", "invalid")
			defs, steps, err := LoadConfig(filepath.Join(dir, tt.file+".yaml"))
			if err == nil {
				t.Fatalf("no error; got %d metrics, %d steps", len(defs), len(steps))
			}
			if defs != nil || steps != nil {
				t.Errorf("results returned beside the error")
			}
			var want []string
			for _, l := range strings.Split(tt.want, "\n") {
				want = append(want, filepath.Join(dir, l))
			}
			if got := err.Error(); got != strings.Join(want, "\n") {
				t.Errorf("error:\n got %s\nwant %s", got, strings.Join(want, "\n"))
			}
		})
	}
	// Every invalid file has its expected error in the table.
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no case in the table", f)
		}
	}
}

func TestParseConfigLimits(t *testing.T) {
	list := func(prefix string, n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf("%s%d", prefix, i)
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	var many strings.Builder
	many.WriteString("metrics:\n")
	for range 30 {
		many.WriteString("  - {name: X, kind: count}\n")
	}
	var tooMany strings.Builder
	tooMany.WriteString("metrics:\n")
	for i := range MaxConfigMetrics + 1 {
		fmt.Fprintf(&tooMany, "  - {name: m%d, kind: count}\n", i)
	}
	tests := []struct {
		name string
		data string
		want string
	}{
		{"too many dimensions", "metrics:\n  - {name: a, kind: count, dimensions: " + list("d", MaxMetricDims+1) + "}\n",
			`c.yaml:2: metrics[0].dimensions: 33 items, more than 32`},
		{"too many types", "metrics:\n  - {name: a, kind: count, types: " + list("t", MaxMetricTypes+1) + "}\n",
			`c.yaml:2: metrics[0].types: 65 items, more than 64`},
		{"too many metrics", tooMany.String(), `c.yaml:2: metrics: 1001 items, more than 1000`},
		{"errors capped", many.String(), strings.Repeat("", 0)},
		{"larger than the limit", "#" + strings.Repeat("x", MaxConfigBytes), `c.yaml: larger than 1048576 bytes`},
		{"day count overflow", "steps:\n  - {name: a, width: 1s, retention: 99999999999d}\n",
			`c.yaml:2: steps[0].retention: "99999999999d" is not a duration`},
		{"null values", "metrics:\n  - {name: , kind: ~}\nbuiltins:\n",
			"c.yaml:2: metrics[0].name: expected a string, got nothing\nc.yaml:2: metrics[0].kind: expected a string, got nothing\nc.yaml:3: builtins: expected true or false, got nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseConfig("c.yaml", []byte(tt.data))
			if err == nil {
				t.Fatal("no error")
			}
			if tt.name == "errors capped" {
				lines := strings.Split(err.Error(), "\n")
				if len(lines) != maxConfigErrors+1 || lines[maxConfigErrors] != "c.yaml: too many errors, stopped" {
					t.Fatalf("%d lines, last %q", len(lines), lines[len(lines)-1])
				}
				return
			}
			if err.Error() != tt.want {
				t.Fatalf("error:\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, _, err := LoadConfig(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "read metrics config: ") {
		t.Fatalf("err = %v", err)
	}
}

// FuzzLoadConfig checks that any input either loads into a valid catalog
// or fails with errors that each name the file.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("metrics:\n  - {name: a, kind: count, dimensions: [x]}\n"))
	f.Add([]byte("builtins: true\nsteps:\n  - {name: s, width: 1m, retention: 1d}\n"))
	f.Add([]byte("metrics:\n  - {name: r, kind: sum, field: props.price, decimals: 3, dimensions: [props.plan]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		defs, steps, err := ParseConfig("f.yaml", data)
		if err != nil {
			for _, l := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(l, "f.yaml:") {
					t.Fatalf("error line %q does not name the file", l)
				}
			}
			return
		}
		if len(defs) == 0 || len(steps) == 0 {
			t.Fatalf("%d metrics, %d steps", len(defs), len(steps))
		}
		if _, err := NewCatalog(defs, steps); err != nil {
			t.Fatalf("loaded config is no catalog: %v", err)
		}
		for _, s := range steps {
			if !metricNameRE.MatchString(s.Name) || s.Width < time.Second || s.Width%time.Second != 0 || s.Retention < time.Second {
				t.Fatalf("bad step %+v", s)
			}
		}
		for _, d := range defs {
			if !metricNameRE.MatchString(d.Name) || (d.Kind == Count) != (d.Field == "") || (d.Kind == Unique && len(d.Dims) > 0) ||
				(d.Kind.Summed() && !strings.HasPrefix(d.Field, PropPrefix)) || d.Decimals < 0 || d.Decimals > MaxDecimals {
				t.Fatalf("bad metric %+v", d)
			}
			for _, x := range d.Dims {
				if !dimNameRE.MatchString(x) {
					t.Fatalf("bad dimension %q", x)
				}
			}
		}
	})
}

// TestConfigFreeTypes: a metric may count the free event names of
// /api/event (Plausible's goals), quoted in YAML, and the types it lists
// are what it counts; a metric without types leaves engagement events out.
func TestConfigFreeTypes(t *testing.T) {
	const cfg = `builtins: true
metrics:
  - {name: outbound, kind: count, types: ["Outbound Link: Click", "File Download", "404", "Añadir 🛒"], dimensions: [url]}
  - {name: engaged, kind: count, types: [engagement]}
`
	defs, _, err := ParseConfig("free.yaml", []byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Def{}
	for _, d := range defs {
		byName[d.Name] = d
	}
	tests := []struct {
		metric, typ string
		want        bool
	}{
		{"outbound", "Outbound Link: Click", true},
		{"outbound", "Añadir 🛒", true},
		{"outbound", "outbound link: click", false},
		{"outbound", "pageview", false},
		{"engaged", Engagement, true},
		{"engaged", "pageview", false},
		{"events", "Outbound Link: Click", true},
		{"events", "pageview", true},
		{"events", Engagement, false},
		{"visitors", Engagement, false},
		{"bots", Engagement, false},
		{"pageviews", Engagement, false},
	}
	for _, tt := range tests {
		d, ok := byName[tt.metric]
		if !ok {
			t.Fatalf("metric %s not loaded", tt.metric)
		}
		if got := d.CountsType(tt.typ); got != tt.want {
			t.Errorf("%s.CountsType(%q) = %v, want %v", tt.metric, tt.typ, got, tt.want)
		}
	}
	long := "metrics:\n  - {name: a, kind: count, types: [\"" + strings.Repeat("x", event.MaxEventName+1) + "\"]}\n"
	if _, _, err := ParseConfig("long.yaml", []byte(long)); err == nil || !strings.Contains(err.Error(), "1 to 120 bytes") {
		t.Errorf("a type of %d bytes: %v, want refused", event.MaxEventName+1, err)
	}
}
