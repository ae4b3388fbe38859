package metric

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pulsehq/pulse/event"
)

// Bounds of a metrics config. The aggregator indexes metrics and
// dimensions with 16 bits and steps with a 64-bit mask; these stay well
// inside that and keep a typo from defining a million metrics.
const (
	MaxConfigBytes   = 1 << 20
	MaxConfigMetrics = 1000
	MaxConfigSteps   = 16
	MaxMetricDims    = 32
	MaxMetricTypes   = 64
	maxConfigErrors  = 20
)

var (
	metricNameRE = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	dimNameRE    = regexp.MustCompile(`^[a-z0-9_.]{1,64}$`)
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	plainKeyRE   = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`) // shown unquoted in paths
)

// LoadConfig reads metric definitions and steps from the YAML file at path
// and validates them. The file has three optional keys:
//
//	steps:      # replaces DefaultSteps when given
//	  - {name: 10s, width: 10s, retention: 6h}
//	metrics:    # replaces Builtins when given
//	  - {name: signups, kind: count, types: [signup], dimensions: [plan, path]}
//	  - {name: buyers, kind: unique, field: uid}
//	  - {name: revenue, kind: sum, field: props.price, decimals: 2, types: [purchase], dimensions: [plan]}
//	builtins: true  # keep Builtins and add metrics to them
//
// docs/metrics.example.yaml shows every key with comments.
//
// Durations are Go durations ("90s", "6h") or whole days ("400d"). Every
// error names the file, the line and the field ("metrics.yaml:7:
// metrics[1].kind: ..."); all errors of a file are reported together.
func LoadConfig(path string) ([]Def, []Step, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read metrics config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read metrics config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig is LoadConfig on the contents of a file; name is what errors
// call the file.
func ParseConfig(name string, data []byte) ([]Def, []Step, error) {
	if len(data) > MaxConfigBytes {
		return nil, nil, fmt.Errorf("%s: larger than %d bytes", name, MaxConfigBytes)
	}
	p := &configParser{file: name}
	root, err := p.document(data)
	if err != nil {
		return nil, nil, err
	}
	defs, steps := p.config(root)
	if err := p.err(); err != nil {
		return nil, nil, err
	}
	if _, err := NewCatalog(defs, steps); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return defs, steps, nil
}

// configParser walks the YAML node tree by hand rather than decoding into
// structs, so that every error can carry the line and path of the value.
type configParser struct {
	file    string
	errs    []configError
	dropped bool // more errors than maxConfigErrors
}

type configError struct {
	line int
	msg  string
}

func (p *configParser) fail(n *yaml.Node, path, format string, args ...any) {
	if len(p.errs) >= maxConfigErrors {
		p.dropped = true
		return
	}
	loc, line := p.file, 0
	if n != nil && n.Line > 0 {
		line = n.Line
		loc += ":" + strconv.Itoa(line)
	}
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	p.errs = append(p.errs, configError{line, loc + ": " + msg})
}

// err returns all errors, one per line in the order of the file.
func (p *configParser) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b configError) int { return a.line - b.line })
	msgs := make([]string, len(p.errs))
	for i, e := range p.errs {
		msgs[i] = e.msg
	}
	if p.dropped {
		msgs = append(msgs, p.file+": too many errors, stopped")
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// document parses data into the root node: nil for an empty file.
func (p *configParser) document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, p.yamlError(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		p.fail(&next, "", "more than one YAML document")
		return nil, p.err()
	case err != io.EOF:
		return nil, p.yamlError(err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, nil
	}
	root := doc.Content[0]
	if isNull(root) {
		return nil, nil
	}
	return root, nil
}

// yamlError puts the file name where the YAML package writes "yaml: line N".
func (p *configParser) yamlError(err error) error {
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(l)
		if m := yamlLineRE.FindStringSubmatch(l); m != nil {
			lines = append(lines, p.file+":"+m[1]+": "+m[2])
		} else if l != "" {
			lines = append(lines, p.file+": "+strings.TrimPrefix(l, "yaml: "))
		}
	}
	if len(lines) == 0 {
		lines = append(lines, p.file+": invalid YAML")
	}
	return errors.New(strings.Join(lines, "\n"))
}

func (p *configParser) config(root *yaml.Node) ([]Def, []Step) {
	if root == nil {
		return Builtins(), DefaultSteps()
	}
	fields := p.mapping(root, "", "steps", "metrics", "builtins")
	if fields == nil {
		return nil, nil
	}
	steps := DefaultSteps()
	if n := fields["steps"]; n != nil {
		steps = p.steps(n)
	}
	var defs []Def
	if n := fields["metrics"]; n != nil {
		defs = p.metrics(n)
	}
	keep := fields["metrics"] == nil
	if n := fields["builtins"]; n != nil {
		var ok bool
		keep, ok = p.boolean(n, "builtins")
		if ok && !keep && fields["metrics"] == nil {
			p.fail(n, "builtins", "false leaves no metrics; add a metrics list")
		}
	}
	if keep {
		builtins := Builtins()
		if n := fields["metrics"]; n != nil && n.Kind == yaml.SequenceNode {
			for i, d := range defs {
				if slices.ContainsFunc(builtins, func(b Def) bool { return b.Name == d.Name }) {
					item := n.Content[i]
					p.fail(valueNode(item, "name"), fmt.Sprintf("metrics[%d].name", i), "%q is a built-in metric", d.Name)
				}
			}
		}
		defs = append(builtins, defs...)
	}
	return defs, steps
}

func (p *configParser) steps(n *yaml.Node) []Step {
	items := p.list(n, "steps", MaxConfigSteps, "the default steps")
	if items == nil {
		return nil
	}
	steps := make([]Step, 0, len(items))
	first := map[string]int{}
	for i, item := range items {
		path := fmt.Sprintf("steps[%d]", i)
		f := p.mapping(item, path, "name", "width", "retention")
		if f == nil {
			continue
		}
		p.required(item, path, f, "name", "width", "retention")
		s := Step{
			Name:      p.name(f["name"], path+".name", metricNameRE),
			Width:     p.duration(f["width"], path+".width"),
			Retention: p.duration(f["retention"], path+".retention"),
		}
		if s.Width != 0 && s.Width%time.Second != 0 {
			// Buckets are aligned to the epoch in ms and combined over the
			// gcd of the widths; whole seconds keep both sensible.
			p.fail(f["width"], path+".width", "%q is not a whole number of seconds", f["width"].Value)
		}
		if line, dup := first[s.Name]; dup && s.Name != "" {
			p.fail(f["name"], path+".name", "%q defined twice (first at line %d)", s.Name, line)
		} else if s.Name != "" {
			first[s.Name] = f["name"].Line
		}
		steps = append(steps, s)
	}
	return steps
}

func (p *configParser) metrics(n *yaml.Node) []Def {
	items := p.list(n, "metrics", MaxConfigMetrics, "the built-in metrics")
	if items == nil {
		return nil
	}
	defs := make([]Def, 0, len(items))
	first := map[string]int{}
	for i, item := range items {
		path := fmt.Sprintf("metrics[%d]", i)
		d, nameNode := p.metric(item, path)
		if line, dup := first[d.Name]; dup && d.Name != "" {
			p.fail(nameNode, path+".name", "%q defined twice (first at line %d)", d.Name, line)
		} else if d.Name != "" {
			first[d.Name] = nameNode.Line
		}
		defs = append(defs, d)
	}
	return defs
}

// fieldExample is what the error for a missing field suggests, by kind.
var fieldExample = map[Kind]string{Unique: "uid", Sum: "props.price", Avg: "props.price"}

// metric reads one metric definition; it returns the node of its name for
// the duplicate check.
func (p *configParser) metric(item *yaml.Node, path string) (Def, *yaml.Node) {
	f := p.mapping(item, path, "name", "kind", "types", "dimensions", "field", "decimals", "bots_only")
	if f == nil {
		return Def{}, nil
	}
	p.required(item, path, f, "name", "kind")
	d := Def{Name: p.name(f["name"], path+".name", metricNameRE)}
	if k := p.str(f["kind"], path+".kind"); k != "" {
		d.Kind = Kind(k)
		if d.Kind != Count && d.Kind != Unique && !d.Kind.Summed() {
			p.fail(f["kind"], path+".kind", "%q is not count, unique, sum or avg", k)
		}
	}
	if n := f["types"]; n != nil {
		d.Types = p.names(n, path+".types", typeNameRule{}, MaxMetricTypes)
	}
	if n := f["dimensions"]; n != nil {
		d.Dims = p.names(n, path+".dimensions", dimNameRE, MaxMetricDims)
		p.propNames(n, path+".dimensions")
		if d.Kind == Unique {
			p.fail(n, path+".dimensions", "a unique metric has no dimensions")
		}
	}
	switch n := f["field"]; {
	case n != nil && d.Kind == Count:
		p.fail(n, path+".field", "a count metric has no field (unique, sum and avg metrics have one)")
	case n != nil:
		d.Field = p.name(n, path+".field", dimNameRE)
		if d.Kind.Summed() && d.Field != "" && (!strings.HasPrefix(d.Field, PropPrefix) || d.Field == PropPrefix) {
			p.fail(n, path+".field", "%q is no prop; %s metrics add a numeric prop (like field: props.price)", d.Field, d.Kind)
		}
	case fieldExample[d.Kind] != "":
		article := "a"
		if d.Kind == Avg {
			article = "an"
		}
		p.fail(item, path, "%s %s metric needs a field (like field: %s)", article, d.Kind, fieldExample[d.Kind])
	}
	if d.Kind.Summed() {
		d.Decimals = DefaultDecimals
	}
	if n := f["decimals"]; n != nil {
		if !d.Kind.Summed() {
			p.fail(n, path+".decimals", "only a sum or avg metric has decimals")
		} else {
			d.Decimals = p.decimals(n, path+".decimals")
		}
	}
	if n := f["bots_only"]; n != nil {
		d.BotsOnly, _ = p.boolean(n, path+".bots_only")
	}
	return d, f["name"]
}

// propNames refuses dimensions named "props." with no prop after it: they
// could never have a value.
func (p *configParser) propNames(n *yaml.Node, path string) {
	for i, item := range n.Content {
		if item.Value == PropPrefix {
			p.fail(item, fmt.Sprintf("%s[%d]", path, i), "%q names no prop (like props.plan)", item.Value)
		}
	}
}

// decimals reads an integer from 0 to MaxDecimals; DefaultDecimals after
// failing.
func (p *configParser) decimals(n *yaml.Node, path string) int {
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || err != nil || v < 0 || v > MaxDecimals {
		p.fail(n, path, "%s is not a whole number from 0 to %d", describe(n), MaxDecimals)
		return DefaultDecimals
	}
	return v
}

// mapping checks that n is a mapping whose keys are among known and
// returns its values by key; nil when n is not a mapping.
func (p *configParser) mapping(n *yaml.Node, path string, known ...string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.fail(n, path, "expected a mapping with %s, got %s", strings.Join(known, ", "), describe(n))
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		kpath := key
		switch {
		case !plainKeyRE.MatchString(key):
			kpath = path + "[" + strconv.Quote(key) + "]"
		case path != "":
			kpath = path + "." + key
		}
		if k.Kind != yaml.ScalarNode || !slices.Contains(known, key) {
			if k.Kind != yaml.ScalarNode {
				kpath = path
			}
			p.fail(k, kpath, "unknown field (known: %s)", strings.Join(known, ", "))
			continue
		}
		if prev, dup := out[key]; dup {
			p.fail(k, kpath, "given twice (first at line %d)", prev.Line)
			continue
		}
		out[key] = v
	}
	return out
}

// required fails for each of keys missing from f.
func (p *configParser) required(n *yaml.Node, path string, f map[string]*yaml.Node, keys ...string) {
	for _, k := range keys {
		if f[k] == nil {
			p.fail(n, path, "%s is required", k)
		}
	}
}

// list checks that n is a non-empty sequence of at most max items;
// leaving it out keeps dflt.
func (p *configParser) list(n *yaml.Node, path string, max int, dflt string) []*yaml.Node {
	switch {
	case n.Kind != yaml.SequenceNode:
		p.fail(n, path, "expected a list, got %s", describe(n))
		return nil
	case len(n.Content) == 0:
		p.fail(n, path, "empty list; leave %s out to keep %s", path, dflt)
		return nil
	case len(n.Content) > max:
		p.fail(n, path, "%d items, more than %d", len(n.Content), max)
		return nil
	}
	return n.Content
}

// names reads a list of distinct names matching re.
func (p *configParser) names(n *yaml.Node, path string, re rule, max int) []string {
	if n.Kind != yaml.SequenceNode {
		p.fail(n, path, "expected a list, got %s", describe(n))
		return nil
	}
	if len(n.Content) > max {
		p.fail(n, path, "%d items, more than %d", len(n.Content), max)
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		s := p.name(item, ipath, re)
		if s == "" {
			continue
		}
		if slices.Contains(out, s) {
			p.fail(item, ipath, "%q listed twice", s)
			continue
		}
		out = append(out, s)
	}
	return out
}

// rule is what a name must match: a *regexp.Regexp, or typeNameRule.
type rule interface {
	MatchString(s string) bool
	String() string
}

// typeNameRule matches every type an event may have: /v1/collect's
// [a-z0-9_.-]{1,64} and the free names of /api/event (Plausible's
// "Outbound Link: Click", "File Download"; quote them in YAML), that is
// event.IsEventName.
type typeNameRule struct{}

func (typeNameRule) MatchString(s string) bool { return event.IsEventName(s) }

func (typeNameRule) String() string {
	return "1 to " + strconv.Itoa(event.MaxEventName) + " bytes of UTF-8 without control characters"
}

// name reads a string matching re; "" after failing.
func (p *configParser) name(n *yaml.Node, path string, re rule) string {
	s := p.str(n, path)
	if s != "" && !re.MatchString(s) {
		p.fail(n, path, "%q must match %s", s, strings.Trim(re.String(), "^$"))
		return ""
	}
	return s
}

// str reads a non-empty string; "" after failing or when n is nil (a
// missing field, reported by required).
func (p *configParser) str(n *yaml.Node, path string) string {
	switch {
	case n == nil:
	case n.Kind != yaml.ScalarNode || isNull(n):
		p.fail(n, path, "expected a string, got %s", describe(n))
	case n.ShortTag() != "!!str":
		p.fail(n, path, "%s is not a string; write %q", show(n.Value), n.Value)
	case n.Value == "":
		p.fail(n, path, "is empty")
	default:
		return n.Value
	}
	return ""
}

// boolean reads true or false; ok is false after failing.
func (p *configParser) boolean(n *yaml.Node, path string) (v, ok bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		if n.Kind == yaml.ScalarNode && !isNull(n) {
			p.fail(n, path, "%q is not true or false", n.Value)
		} else {
			p.fail(n, path, "expected true or false, got %s", describe(n))
		}
		return false, false
	}
	b, _ := strconv.ParseBool(strings.ToLower(n.Value))
	return b, true
}

// duration reads a duration of at least a second; 0 after failing or
// when n is nil.
func (p *configParser) duration(n *yaml.Node, path string) time.Duration {
	if n == nil {
		return 0
	}
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.fail(n, path, "expected a duration, got %s", describe(n))
		return 0
	}
	d, ok := parseDuration(n.Value)
	switch {
	case !ok:
		p.fail(n, path, "%q is not a duration", n.Value)
		return 0
	case d < time.Second:
		p.fail(n, path, "%q is less than 1s", n.Value)
		return 0
	}
	return d
}

// parseDuration accepts Go durations and whole days ("400d"), since
// retentions are naturally given in days.
func parseDuration(s string) (time.Duration, bool) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 32)
		if err != nil || n > 100*365 {
			return 0, false
		}
		return time.Duration(n) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

// show returns s as is when that is unambiguous on one line, else quoted.
func show(s string) string {
	if q := strconv.Quote(s); q[1:len(q)-1] != s || s == "" {
		return q
	}
	return s
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is, for "expected X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias (aliases are not supported)"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// valueNode returns the value of key in mapping n, or n itself.
func valueNode(n *yaml.Node, key string) *yaml.Node {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
	}
	return n
}
