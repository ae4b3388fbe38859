// Package metric defines what Pulse aggregates: metric definitions (which
// events a metric counts and by which dimensions), time steps with their
// retention, and the combined update a batch of events produces for the
// aggregate store.
package metric

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind says how a metric aggregates.
type Kind string

const (
	Count  Kind = "count"  // number of events, per bucket and per dimension value
	Unique Kind = "unique" // distinct values of a field (HyperLogLog), per bucket
	// Sum adds a numeric prop (Field) over the events, per bucket and per
	// dimension value, exactly: in fixed point with Decimals (sum.go).
	Sum Kind = "sum"
	// Avg is a Sum divided, at read time, by the number of events that
	// carried a number in Field.
	Avg Kind = "avg"
)

// Summed reports whether k adds a numeric field (sum and avg).
func (k Kind) Summed() bool { return k == Sum || k == Avg }

// Step is a bucket width with the retention of its buckets.
type Step struct {
	Name      string        `json:"name"` // "10s", "1m", "1h", "1d"
	Width     time.Duration `json:"-"`
	Retention time.Duration `json:"-"`
}

// Bucket returns the start (ms) of the bucket holding ts (ms).
func (s Step) Bucket(ts int64) int64 {
	w := s.Width.Milliseconds()
	b := ts - ts%w
	if ts < 0 && ts%w != 0 {
		b -= w
	}
	return b
}

// ExpireAt returns when (ms) a bucket starting at b leaves retention. It is a
// function of the bucket alone, so live aggregation and replay set the same
// expiry.
func (s Step) ExpireAt(b int64) int64 {
	return b + s.Width.Milliseconds() + s.Retention.Milliseconds()
}

// DefaultSteps are the built-in steps and retentions.
func DefaultSteps() []Step {
	return []Step{
		{Name: "10s", Width: 10 * time.Second, Retention: 6 * time.Hour},
		{Name: "1m", Width: time.Minute, Retention: 3 * 24 * time.Hour},
		{Name: "1h", Width: time.Hour, Retention: 35 * 24 * time.Hour},
		{Name: "1d", Width: 24 * time.Hour, Retention: 400 * 24 * time.Hour},
	}
}

// Def defines one metric.
type Def struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Types limits the metric to events of these types; empty means
	// every type but Engagement, which a metric counts only when its
	// Types lists it.
	Types []string `json:"types,omitempty"`
	// Dims are the dimensions a count or sum is broken down by: "type",
	// "path", "referrer" (host of ref), "device", "props.NAME" (the prop
	// NAME), or else the name of a prop ("target" is props.target).
	Dims []string `json:"dimensions"`
	// BotsOnly makes the metric count bot events only; every other metric
	// leaves bot events out, so bot traffic is visible but never inflates
	// the numbers people read.
	BotsOnly bool `json:"bots_only,omitempty"`
	// Field is what a unique metric counts distinct values of ("uid"), or
	// the numeric prop a sum or avg metric adds ("props.price").
	Field string `json:"field,omitempty"`
	// Decimals is the fixed-point precision of a sum or avg metric, 0 to
	// MaxDecimals: values are rounded to it before they are added.
	Decimals int `json:"decimals,omitempty"`
}

// Engagement is the type of the engagement events of Plausible's trackers
// (engaged time and scroll depth of a page, sent when it is left): they
// are neither a pageview nor a goal, so a metric without Types (events,
// visitors, bots) leaves them out; they are archived like every event.
const Engagement = "engagement"

// CountsType reports whether d counts events of type t.
func (d *Def) CountsType(t string) bool {
	if len(d.Types) == 0 {
		return t != Engagement
	}
	return slices.Contains(d.Types, t)
}

// Builtins are the built-in metrics (docs/api.md, "Queries").
func Builtins() []Def {
	return []Def{
		{Name: "events", Kind: Count, Dims: []string{"type"}},
		{Name: "pageviews", Kind: Count, Types: []string{"pageview"}, Dims: []string{"path", "referrer", "device"}},
		{Name: "clicks", Kind: Count, Types: []string{"click"}, Dims: []string{"path", "target"}},
		{Name: "visitors", Kind: Unique, Field: "uid"},
		{Name: "bots", Kind: Count, BotsOnly: true, Dims: []string{"type", "device"}},
	}
}

// Catalog is a validated set of metric definitions and steps. It is safe for
// concurrent use: it is never modified after New.
type Catalog struct {
	Steps   []Step
	Metrics []Def
	byName  map[string]int
	stepIdx map[string]int
}

// NewCatalog validates defs and steps and indexes them.
func NewCatalog(defs []Def, steps []Step) (*Catalog, error) {
	c := &Catalog{Steps: steps, Metrics: defs, byName: map[string]int{}, stepIdx: map[string]int{}}
	for i, s := range steps {
		if s.Width <= 0 || s.Retention <= 0 {
			return nil, fmt.Errorf("step %q: width and retention must be positive", s.Name)
		}
		if _, dup := c.stepIdx[s.Name]; dup {
			return nil, fmt.Errorf("step %q defined twice", s.Name)
		}
		c.stepIdx[s.Name] = i
	}
	for i, d := range defs {
		if d.Name == "" {
			return nil, fmt.Errorf("metric %d: name is empty", i)
		}
		if _, dup := c.byName[d.Name]; dup {
			return nil, fmt.Errorf("metric %q defined twice", d.Name)
		}
		switch d.Kind {
		case Count:
		case Unique:
			if d.Field == "" {
				return nil, fmt.Errorf("metric %q: unique metric needs a field", d.Name)
			}
		case Sum, Avg:
			if !strings.HasPrefix(d.Field, PropPrefix) || len(d.Field) == len(PropPrefix) {
				return nil, fmt.Errorf("metric %q: %s metric needs a field props.NAME, got %q", d.Name, d.Kind, d.Field)
			}
			if d.Decimals < 0 || d.Decimals > MaxDecimals {
				return nil, fmt.Errorf("metric %q: decimals %d is not 0 to %d", d.Name, d.Decimals, MaxDecimals)
			}
		default:
			return nil, fmt.Errorf("metric %q: kind %q is not count, unique, sum or avg", d.Name, d.Kind)
		}
		c.byName[d.Name] = i
	}
	return c, nil
}

// Metric returns the definition named name.
func (c *Catalog) Metric(name string) (Def, bool) {
	i, ok := c.byName[name]
	if !ok {
		return Def{}, false
	}
	return c.Metrics[i], true
}

// Step returns the step named name.
func (c *Catalog) Step(name string) (Step, bool) {
	i, ok := c.stepIdx[name]
	if !ok {
		return Step{}, false
	}
	return c.Steps[i], true
}

// HasDim reports whether d has dimension dim.
func (d Def) HasDim(dim string) bool {
	for _, x := range d.Dims {
		if x == dim {
			return true
		}
	}
	return false
}

// DefaultRowRetention is how long the Stats API's rows are kept when no
// step is an hour wide: the default 1h step's retention.
const DefaultRowRetention = 35 * 24 * time.Hour

// RowRetention is how long the Stats API's fact rows of an hour are kept
// after the hour ends: as long as the buckets of the hour-wide step, whose
// ranges they answer with filters and breakdowns; DefaultRowRetention when
// the catalog has no such step.
func (c *Catalog) RowRetention() time.Duration {
	for _, s := range c.Steps {
		if s.Width == time.Hour {
			return s.Retention
		}
	}
	return DefaultRowRetention
}
