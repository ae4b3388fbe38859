package namespace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/pulsehq/pulse/metric"
)

// State is where a namespace is in its life.
type State string

// The states of a namespace. A namespace is built (building), then has
// caught up with the stream (ready), then is promoted (current). Only one
// namespace is current; the one it replaced goes back to ready.
const (
	Building State = "building"
	Ready    State = "ready"
	Current  State = "current"
)

// Errors callers branch on (the admin API maps them to 404 and 409).
var (
	ErrNotFound = errors.New("namespace: not found")
	ErrConflict = errors.New("namespace: conflict")
	ErrBadName  = errors.New("namespace: bad name")
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// CheckName accepts the names a namespace may have: they are part of every
// Redis key of the namespace, so no ':' or braces.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w %q: want [a-z0-9][a-z0-9_-]{0,31}", ErrBadName, name)
	}
	return nil
}

// Info describes one namespace.
type Info struct {
	Name    string    `json:"name"`
	State   State     `json:"state"`
	Created time.Time `json:"created"`
	// MetricsConfig is the metric configuration (YAML, metric.ParseConfig)
	// the namespace is built with; "" means the built-in metrics.
	MetricsConfig string `json:"metrics_config,omitempty"`
	// Metrics lists the metric names of that catalog, for display.
	Metrics []string `json:"metrics"`
	// From and To (unix ms) bound the event times a replay put in the
	// namespace; both 0 for everything.
	From int64 `json:"from,omitempty"`
	To   int64 `json:"to,omitempty"`
	// Promoted is when the namespace last became current.
	Promoted time.Time `json:"promoted,omitzero"`
}

// Catalog builds the metric catalog the namespace was built with.
func (i Info) Catalog() (*metric.Catalog, error) {
	return ParseCatalog(i.MetricsConfig)
}

// ParseCatalog builds a catalog from a metrics configuration ("" for the
// built-ins).
func ParseCatalog(config string) (*metric.Catalog, error) {
	defs, steps := metric.Builtins(), metric.DefaultSteps()
	if config != "" {
		var err error
		if defs, steps, err = metric.ParseConfig("metrics config", []byte(config)); err != nil {
			return nil, err
		}
	}
	return metric.NewCatalog(defs, steps)
}

// Names lists the metric names of a catalog.
func Names(c *metric.Catalog) []string {
	out := make([]string, 0, len(c.Metrics))
	for _, d := range c.Metrics {
		out = append(out, d.Name)
	}
	return out
}

// Doc is the whole registry as stored.
type Doc struct {
	Current    string `json:"current"`
	Namespaces []Info `json:"namespaces"`
}

// Find returns the namespace called name.
func (d *Doc) Find(name string) (*Info, bool) {
	for i := range d.Namespaces {
		if d.Namespaces[i].Name == name {
			return &d.Namespaces[i], true
		}
	}
	return nil, false
}

// Backend stores the registry document. Load of a registry never saved
// returns nil bytes and no error.
type Backend interface {
	Load(ctx context.Context) ([]byte, error)
	Save(ctx context.Context, doc []byte) error
}

// Registry is the namespace registry. Safe for concurrent use within one
// process; admin changes go to one process (the one serving the admin
// routes), others only read.
type Registry struct {
	be  Backend
	now func() time.Time
	mu  sync.Mutex
}

// Config configures a Registry. The zero Config is a sensible one.
type Config struct {
	// Now gives the Created and Promoted times; nil means time.Now.
	Now func() time.Time
}

// New returns a registry over be.
func New(be Backend, cfg Config) *Registry {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Registry{be: be, now: cfg.Now}
}

// Load reads the registry.
func (r *Registry) Load(ctx context.Context) (Doc, error) {
	b, err := r.be.Load(ctx)
	if err != nil {
		return Doc{}, fmt.Errorf("load namespace registry: %w", err)
	}
	var d Doc
	if len(b) == 0 {
		return d, nil
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return Doc{}, fmt.Errorf("decode namespace registry: %w", err)
	}
	return d, nil
}

// Swapper is a Backend that can replace the document only if it is still
// old, so that processes sharing the registry (a fleet on one Redis) never
// lose each other's changes.
type Swapper interface {
	CompareAndSwap(ctx context.Context, old, doc []byte) (bool, error)
}

// Update applies fn to the registry and saves the result unless fn fails.
// On a Swapper backend it retries when another process changed the
// registry in between (fn then runs again on the new document).
func (r *Registry) Update(ctx context.Context, fn func(d *Doc) error) (Doc, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for attempt := 0; ; attempt++ {
		old, err := r.be.Load(ctx)
		if err != nil {
			return Doc{}, fmt.Errorf("load namespace registry: %w", err)
		}
		var d Doc
		if len(old) > 0 {
			if err := json.Unmarshal(old, &d); err != nil {
				return Doc{}, fmt.Errorf("decode namespace registry: %w", err)
			}
		}
		if err := fn(&d); err != nil {
			return Doc{}, err
		}
		slices.SortFunc(d.Namespaces, func(a, b Info) int { return a.Created.Compare(b.Created) })
		b, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return Doc{}, fmt.Errorf("encode namespace registry: %w", err)
		}
		sw, ok := r.be.(Swapper)
		if !ok {
			if err := r.be.Save(ctx, b); err != nil {
				return Doc{}, fmt.Errorf("save namespace registry: %w", err)
			}
			return d, nil
		}
		swapped, err := sw.CompareAndSwap(ctx, old, b)
		if err != nil {
			return Doc{}, fmt.Errorf("save namespace registry: %w", err)
		}
		if swapped {
			return d, nil
		}
		if attempt == maxSwapAttempts-1 {
			return Doc{}, fmt.Errorf("%w: the registry kept changing under this update", ErrConflict)
		}
		// A random pause before trying again, growing with the attempts:
		// processes that lost to each other retrying at once would go on
		// losing (seen with four busy processes on two cores).
		pause := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
		select {
		case <-ctx.Done():
			return Doc{}, ctx.Err()
		case <-time.After(pause):
		}
	}
}

// maxSwapAttempts bounds Update's retries against other processes: with
// the backoff, about 0.4 s of losing every race.
const maxSwapAttempts = 12

// Bootstrap makes sure a current namespace exists: an empty registry gets
// name as its current namespace, built with metricsConfig. It returns the
// current namespace, which on an existing registry may differ from name:
// the registry, not the flag, says which namespace is current after a
// promote.
func (r *Registry) Bootstrap(ctx context.Context, name, metricsConfig string) (Info, error) {
	if err := CheckName(name); err != nil {
		return Info{}, err
	}
	var cur Info
	_, err := r.Update(ctx, func(d *Doc) error {
		if d.Current != "" {
			if i, ok := d.Find(d.Current); ok {
				cur = *i
				return nil
			}
		}
		cat, err := ParseCatalog(metricsConfig)
		if err != nil {
			return err
		}
		now := r.now().UTC()
		i, ok := d.Find(name)
		if !ok {
			d.Namespaces = append(d.Namespaces, Info{Name: name, Created: now, MetricsConfig: metricsConfig, Metrics: Names(cat)})
			i = &d.Namespaces[len(d.Namespaces)-1]
		}
		i.State, i.Promoted = Current, now
		d.Current = name
		cur = *i
		return nil
	})
	return cur, err
}

// Create registers a new namespace in state Building, or returns the
// existing one when it is Building (a replay resumed) or Ready (a replay
// run again to catch up with the stream before a promote), in state
// Building.
func (r *Registry) Create(ctx context.Context, info Info) (Info, error) {
	if err := CheckName(info.Name); err != nil {
		return Info{}, err
	}
	cat, err := ParseCatalog(info.MetricsConfig)
	if err != nil {
		return Info{}, fmt.Errorf("namespace %s: metrics config: %w", info.Name, err)
	}
	var out Info
	_, err = r.Update(ctx, func(d *Doc) error {
		if i, ok := d.Find(info.Name); ok {
			if i.State == Ready {
				i.State = Building
			}
			if i.State != Building {
				return fmt.Errorf("%w: namespace %s exists and is %s; drop it first or pick another name", ErrConflict, info.Name, i.State)
			}
			out = *i
			return nil
		}
		info.State, info.Created, info.Metrics = Building, r.now().UTC(), Names(cat)
		d.Namespaces = append(d.Namespaces, info)
		out = info
		return nil
	})
	return out, err
}

// SetState moves a namespace that is not current to Building or Ready.
func (r *Registry) SetState(ctx context.Context, name string, s State) error {
	_, err := r.Update(ctx, func(d *Doc) error {
		i, ok := d.Find(name)
		if !ok {
			return fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		if i.State == Current || s == Current {
			return fmt.Errorf("%w: namespace %s is %s; use Promote", ErrConflict, name, i.State)
		}
		i.State = s
		return nil
	})
	return err
}

// Promote makes name current; the previous current namespace becomes
// Ready. Only a Ready namespace can be promoted.
func (r *Registry) Promote(ctx context.Context, name string) (prev string, err error) {
	_, err = r.Update(ctx, func(d *Doc) error {
		i, ok := d.Find(name)
		if !ok {
			return fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		if i.State != Ready {
			return fmt.Errorf("%w: namespace %s is %s, only a ready namespace can be promoted", ErrConflict, name, i.State)
		}
		if i.To != 0 {
			// The live aggregator continues from the positions the replay
			// ended at; events after To read before then are not in it.
			return fmt.Errorf("%w: namespace %s holds events before %s only; replay without an end to promote", ErrConflict, name, time.UnixMilli(i.To).UTC().Format(time.RFC3339))
		}
		prev = d.Current
		if p, ok := d.Find(prev); ok {
			p.State = Ready
		}
		i.State, i.Promoted = Current, r.now().UTC()
		d.Current = name
		return nil
	})
	return prev, err
}

// Remove deletes a namespace that is not current from the registry.
func (r *Registry) Remove(ctx context.Context, name string) error {
	_, err := r.Update(ctx, func(d *Doc) error {
		i, ok := d.Find(name)
		if !ok {
			return fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		if i.State == Current || d.Current == name {
			return fmt.Errorf("%w: namespace %s is current; promote another one first", ErrConflict, name)
		}
		d.Namespaces = slices.DeleteFunc(d.Namespaces, func(x Info) bool { return x.Name == name })
		return nil
	})
	return err
}
