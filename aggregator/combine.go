package aggregator

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pulsehq/pulse/event"
	"github.com/pulsehq/pulse/factrow"
	"github.com/pulsehq/pulse/metric"
)

// plan is the catalog compiled for the per-event loop. Safe for concurrent
// use: never modified after newPlan.
type plan struct {
	steps []metric.Step
	base  int64 // ms, the gcd of the step widths: every step's bucket of ts is its bucket of ts's base bucket
	defs  []planDef
	rule  event.TimeRule
	// rowKeep is how long after its hour ends an event's fact row is
	// kept (ms): older events get none, as a bucket past its retention
	// gets no count.
	rowKeep int64
}

type planDef struct {
	def    metric.Def
	types  map[string]bool // nil: every type
	unique bool
	summed bool   // sum or avg: adds the number in prop
	avg    bool   // also counts the events that carried one (samples)
	prop   string // sum and avg: the prop of def.Field
}

func newPlan(cat *metric.Catalog, rule event.TimeRule) *plan {
	p := &plan{steps: cat.Steps, rule: rule, rowKeep: cat.RowRetention().Milliseconds()}
	for _, st := range cat.Steps {
		p.base = gcd(p.base, st.Width.Milliseconds())
	}
	if p.base <= 0 {
		p.base = 1
	}
	for _, d := range cat.Metrics {
		pd := planDef{def: d, unique: d.Kind == metric.Unique, summed: d.Kind.Summed(), avg: d.Kind == metric.Avg,
			prop: strings.TrimPrefix(d.Field, metric.PropPrefix)}
		if len(d.Types) > 0 {
			pd.types = map[string]bool{}
			for _, t := range d.Types {
				pd.types[t] = true
			}
		}
		p.defs = append(p.defs, pd)
	}
	return p
}

// eventTime applies the event time rule (see the package doc and
// event.TimeRule, which the archive shares): it returns the time to bucket
// the event at and its outcome.
func (p *plan) eventTime(e *event.Event) (ts int64, outcome int) {
	ts, v := p.rule.Judge(e.TS, e.RT)
	switch v {
	case event.FutureClamped:
		return ts, 1
	case event.TooLate:
		return ts, 2
	}
	return ts, 0
}

// field returns the value of a dimension or unique field of e: a field of
// the event, or a prop, named "props.NAME" or, for short, "NAME" (a prop key
// that is also a field name, or starts with "props.", needs the long form).
func field(e *event.Event, name string) string {
	switch name {
	case "type":
		return e.Type
	case "path":
		return e.Path
	case "referrer":
		return e.RefHost
	case "device":
		return e.Device
	case "uid":
		return e.UID
	}
	name = strings.TrimPrefix(name, metric.PropPrefix)
	switch v := e.Props[name].(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	default:
		return fmt.Sprint(v)
	}
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// countKey is a counter before it is spread over the steps: strings are
// interned to ids, and the bucket is the base bucket with a mask of the
// steps that count it, so an event costs one map update per dimension, not
// one per dimension and step, and the hashed key is a small fixed-size
// struct instead of five strings.
type countKey struct {
	site, value uint32
	def         uint16
	dim         uint16 // 0: total; i+1: Dims[i]
	base        int64  // base bucket, ms
	steps       uint64 // bit i: counted in step i
}

// uniqueKey is one value of a unique metric before it is spread over the
// steps, keyed like countKey.
type uniqueKey struct {
	site, value uint32
	def         uint16
	base        int64
	steps       uint64
}

// combiner folds the events of one batch into one metric.Update. Not safe
// for concurrent use.
type combiner struct {
	p       *plan
	ids     map[string]uint32
	strs    []string
	counts  map[countKey]int64 // counts, and the sums of sum and avg metrics
	samples map[countKey]int64 // avg metrics: events that carried a number
	uniques map[uniqueKey]struct{}
	rows    map[rowKey][]byte  // fact rows per site hour (package factrow)
	final   map[finalKey]int64 // update: counters per step
	sizes   map[finalKey]int   // update: values per unique set
}

// rowKey is the hour of a site that fact rows are appended to.
type rowKey struct {
	site uint32
	hour int64
}

// finalKey is a counter or unique set of one step, with interned strings.
type finalKey struct {
	site, value uint32
	def, dim    uint16
	step        uint16
	bucket      int64
}

func newCombiner(p *plan) *combiner {
	return &combiner{
		p: p, ids: map[string]uint32{}, counts: map[countKey]int64{}, samples: map[countKey]int64{}, uniques: map[uniqueKey]struct{}{}, rows: map[rowKey][]byte{},
		final: map[finalKey]int64{}, sizes: map[finalKey]int{},
	}
}

func (c *combiner) intern(s string) uint32 {
	if id, ok := c.ids[s]; ok {
		return id
	}
	id := uint32(len(c.strs))
	c.ids[s] = id
	c.strs = append(c.strs, s)
	return id
}

// add folds one deduplicated event in and returns its outcome index.
func (c *combiner) add(e *event.Event, t *tally) int {
	ts, outcome := c.p.eventTime(e)
	if outcome == 2 {
		return outcome
	}
	c.addRow(e, ts)
	var mask uint64
	for i, s := range c.p.steps {
		if s.ExpireAt(s.Bucket(ts)) > e.RT {
			mask |= 1 << i
		} else {
			t.skipped[i]++
		}
	}
	if mask == 0 {
		return outcome
	}
	base := floorDiv(ts, c.p.base) * c.p.base
	site := uint32(0)
	siteSet := false
	for di := range c.p.defs {
		d := &c.p.defs[di]
		if e.Bot != d.def.BotsOnly {
			continue
		}
		// A listed type is a map lookup here rather than CountsType's
		// slice scan; without a list, CountsType is the rule.
		if d.types != nil && !d.types[e.Type] || d.types == nil && !d.def.CountsType(e.Type) {
			continue
		}
		if !siteSet {
			site, siteSet = c.intern(e.Site), true
		}
		if d.unique {
			v := field(e, d.def.Field)
			if v == "" {
				continue
			}
			c.uniques[uniqueKey{site: site, value: c.intern(v), def: uint16(di), base: base, steps: mask}] = struct{}{}
			continue
		}
		add := int64(1)
		if d.summed {
			var ok bool
			if add, ok = metric.Scaled(e.Props[d.prop], d.def.Decimals); !ok {
				if e.Props[d.prop] != nil {
					t.unsummed++
				}
				continue
			}
		}
		k := countKey{site: site, def: uint16(di), base: base, steps: mask}
		c.addCount(d, k, add)
		for dim, name := range d.def.Dims {
			// Cut here, where values are extracted, so live aggregation and
			// replay (which runs this code) store the same value.
			v := metric.CutValue(field(e, name))
			if v == "" {
				v = metric.None
			}
			k.value, k.dim = c.intern(v), uint16(dim+1)
			c.addCount(d, k, add)
		}
	}
	return outcome
}

// addRow appends e's fact row to its hour. Bots get none, as they are in
// no Stats API answer, and neither do engagement events, which count in no
// metric of the contract.
func (c *combiner) addRow(e *event.Event, ts int64) {
	if e.Bot || e.Type == metric.Engagement {
		return
	}
	hour := factrow.HourOf(ts)
	if hour+factrow.HourMs+c.p.rowKeep <= e.RT {
		return
	}
	k := rowKey{c.intern(e.Site), hour}
	c.rows[k] = factrow.AppendEvent(c.rows[k], e, ts, hour)
}

// addCount adds one event's count, or number, to k.
func (c *combiner) addCount(d *planDef, k countKey, add int64) {
	if !d.summed {
		c.counts[k]++
		return
	}
	c.counts[k] = metric.AddScaled(c.counts[k], add)
	if d.avg {
		c.samples[k]++
	}
}

// update returns what was added since the last call as a metric.Update and
// resets the combiner.
func (c *combiner) update() *metric.Update {
	u := &metric.Update{Uniques: map[metric.UniqueKey]map[string]struct{}{}}
	u.Counts = c.spread(c.counts)
	if len(c.samples) > 0 {
		u.Samples = c.spread(c.samples)
	}
	// Size every set before filling it: growing them one value at a time
	// was a third of the combining cost.
	for k := range c.uniques {
		for si, st := range c.p.steps {
			if k.steps&(1<<si) != 0 {
				c.sizes[finalKey{site: k.site, def: k.def, step: uint16(si), bucket: st.Bucket(k.base)}]++
			}
		}
	}
	sets := make(map[finalKey]map[string]struct{}, len(c.sizes))
	for k, n := range c.sizes {
		set := make(map[string]struct{}, n)
		sets[k] = set
		u.Uniques[metric.UniqueKey{Site: c.strs[k.site], Metric: c.p.defs[k.def].def.Name, Step: c.p.steps[k.step].Name, Bucket: k.bucket}] = set
	}
	for k := range c.uniques {
		v := c.strs[k.value]
		for si, st := range c.p.steps {
			if k.steps&(1<<si) != 0 {
				sets[finalKey{site: k.site, def: k.def, step: uint16(si), bucket: st.Bucket(k.base)}][v] = struct{}{}
			}
		}
	}
	if len(c.rows) > 0 {
		u.Rows = make(map[metric.RowKey][]byte, len(c.rows))
		for k, b := range c.rows {
			u.Rows[metric.RowKey{Site: c.strs[k.site], Hour: k.hour}] = b
		}
		clear(c.rows)
	}
	clear(c.final)
	clear(c.sizes)
	clear(c.ids)
	clear(c.counts)
	clear(c.samples)
	clear(c.uniques)
	c.strs = c.strs[:0]
	return u
}

// spread returns counters over the steps as metric count keys. It spreads
// with integer keys first, so that string keys are hashed once per distinct
// final key, not once per step of each combined counter. Sums saturate as
// in the store (metric.AddScaled); counts never come near.
func (c *combiner) spread(counts map[countKey]int64) map[metric.CountKey]int64 {
	for k, n := range counts {
		for si, st := range c.p.steps {
			if k.steps&(1<<si) != 0 {
				fk := finalKey{site: k.site, value: k.value, def: k.def, dim: k.dim, step: uint16(si), bucket: st.Bucket(k.base)}
				c.final[fk] = metric.AddScaled(c.final[fk], n)
			}
		}
	}
	out := make(map[metric.CountKey]int64, len(c.final))
	for k, n := range c.final {
		d := &c.p.defs[k.def].def
		ck := metric.CountKey{Site: c.strs[k.site], Metric: d.Name, Step: c.p.steps[k.step].Name, Bucket: k.bucket}
		if k.dim > 0 {
			ck.Dim, ck.Value = d.Dims[k.dim-1], c.strs[k.value]
		}
		out[ck] = n
	}
	clear(c.final)
	return out
}
