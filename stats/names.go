package stats

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pulsehq/pulse/event"
)

// Level says what a metric or a dimension needs to be answered.
type Level uint8

const (
	// EventLevel is answerable from each event on its own (its path, type,
	// props, receive time, and the referrer and device every event carries).
	EventLevel Level = iota + 1
	// VisitLevel needs visits (sessions): the events of one visitor joined
	// across the 30-minute gap rule.
	VisitLevel
)

func (l Level) String() string {
	if l == VisitLevel {
		return "visit"
	}
	return "event"
}

// MetricKind is one metric of the contract.
type MetricKind uint8

// The metrics of the contract.
const (
	Events MetricKind = iota + 1
	Pageviews
	Visitors
	Visits
	BounceRate
	VisitDuration
	ViewsPerVisit
	ConversionRate
	Percentage
	Sum // sum:props.NAME
	Avg // avg:props.NAME
)

// metricNames are the plain metric names by kind; Sum and Avg carry a prop.
var metricNames = [...]string{
	Events: "events", Pageviews: "pageviews", Visitors: "visitors",
	Visits: "visits", BounceRate: "bounce_rate", VisitDuration: "visit_duration",
	ViewsPerVisit: "views_per_visit", ConversionRate: "conversion_rate",
	Percentage: "percentage",
}

// Metric is one metric asked for; Prop is the prop name of Sum and Avg.
type Metric struct {
	Kind MetricKind
	Prop string
}

// ParseMetric reads a metric name of the contract; the error says what is
// wrong with it.
func ParseMetric(s string) (Metric, error) {
	for k, name := range metricNames {
		if name != "" && name == s {
			return Metric{Kind: MetricKind(k)}, nil
		}
	}
	for _, k := range []MetricKind{Sum, Avg} {
		if name, ok := strings.CutPrefix(s, Metric{Kind: k}.String()); ok {
			if msg := checkPropName(name); msg != "" {
				return Metric{}, errors.New("prop name of " + strconv.Quote(s) + " " + msg)
			}
			return Metric{Kind: k, Prop: name}, nil
		}
	}
	return Metric{}, errors.New("unknown metric " + strconv.Quote(s))
}

func (m Metric) String() string {
	switch m.Kind {
	case Sum:
		return "sum:props." + m.Prop
	case Avg:
		return "avg:props." + m.Prop
	}
	if int(m.Kind) < len(metricNames) && metricNames[m.Kind] != "" {
		return metricNames[m.Kind]
	}
	return "metric(" + strconv.Itoa(int(m.Kind)) + ")"
}

// Level is VisitLevel for the session metrics (visits, bounce_rate,
// visit_duration, views_per_visit) and EventLevel for the rest.
func (m Metric) Level() Level {
	if m.session() {
		return VisitLevel
	}
	return EventLevel
}

func (m Metric) session() bool {
	switch m.Kind {
	case Visits, BounceRate, VisitDuration, ViewsPerVisit:
		return true
	}
	return false
}

// DimensionKind is one dimension of the contract.
type DimensionKind uint8

// The dimensions of the contract.
const (
	Page     DimensionKind = iota + 1 // event:page
	Hostname                          // event:hostname
	Goal                              // event:goal, the event type
	Prop                              // event:props:NAME
	EntryPage
	ExitPage
	Source
	Referrer
	UTMSource
	UTMMedium
	UTMCampaign
	UTMContent
	UTMTerm
	Device
	Browser
	OS
	Country
	BrowserVersion
	OSVersion
	Time // the grain chosen from the range's length (Query.TimeGrain)
	TimeMinute
	TimeHour
	TimeDay
	TimeWeek
	TimeMonth
)

// dimensionNames are the dimension names by kind; Prop carries a name.
var dimensionNames = [...]string{
	Page: "event:page", Hostname: "event:hostname", Goal: "event:goal",
	Prop: "event:props:", EntryPage: "visit:entry_page", ExitPage: "visit:exit_page",
	Source: "visit:source", Referrer: "visit:referrer",
	UTMSource: "visit:utm_source", UTMMedium: "visit:utm_medium",
	UTMCampaign: "visit:utm_campaign", UTMContent: "visit:utm_content",
	UTMTerm: "visit:utm_term", Device: "visit:device",
	Browser: "visit:browser", OS: "visit:os", Country: "visit:country",
	BrowserVersion: "visit:browser_version", OSVersion: "visit:os_version",
	Time: "time", TimeMinute: "time:minute", TimeHour: "time:hour",
	TimeDay: "time:day", TimeWeek: "time:week", TimeMonth: "time:month",
}

// Dimension is one dimension; Prop is the prop name of event:props:NAME.
type Dimension struct {
	Kind DimensionKind
	Prop string
}

// ParseDimension reads a dimension name of the contract; the error says
// what is wrong with it.
func ParseDimension(s string) (Dimension, error) {
	for k, name := range dimensionNames {
		if name != "" && name == s && DimensionKind(k) != Prop {
			return Dimension{Kind: DimensionKind(k)}, nil
		}
	}
	if name, ok := strings.CutPrefix(s, "event:props:"); ok {
		if msg := checkPropName(name); msg != "" {
			return Dimension{}, errors.New("prop name of " + strconv.Quote(s) + " " + msg)
		}
		return Dimension{Kind: Prop, Prop: name}, nil
	}
	return Dimension{}, errors.New("unknown dimension " + strconv.Quote(s))
}

func (d Dimension) String() string {
	if d.Kind == Prop {
		return "event:props:" + d.Prop
	}
	if int(d.Kind) < len(dimensionNames) && dimensionNames[d.Kind] != "" {
		return dimensionNames[d.Kind]
	}
	return "dimension(" + strconv.Itoa(int(d.Kind)) + ")"
}

// Level is EventLevel for event:*, time*, and the visit:* dimensions
// ingest derives for every event from its own request (referrer, device,
// browser, os, their versions, country): a visit's value of these is its
// first event's, but an event is counted by its own. The others (source,
// utm_*, entry and exit page) are the visit's, read from its first, first
// or last pageview's event: VisitLevel.
func (d Dimension) Level() Level {
	switch d.Kind {
	case Page, Hostname, Goal, Prop, Referrer, Device, Browser, BrowserVersion, OS, OSVersion, Country:
		return EventLevel
	}
	if d.IsTime() {
		return EventLevel
	}
	return VisitLevel
}

// IsTime reports whether d is time or time:GRAIN.
func (d Dimension) IsTime() bool { return d.Kind >= Time && d.Kind <= TimeMonth }

// isEvent reports whether d is one of event:*, the dimensions Plausible
// reads from the events table.
func (d Dimension) isEvent() bool {
	switch d.Kind {
	case Page, Hostname, Goal, Prop:
		return true
	}
	return false
}

// Grain is the bucket size of a time:GRAIN dimension; ok is false for the
// plain time dimension (Query.TimeGrain resolves it) and for non-time ones.
func (d Dimension) Grain() (g Grain, ok bool) {
	switch d.Kind {
	case TimeMinute:
		return Minute, true
	case TimeHour:
		return Hour, true
	case TimeDay:
		return Day, true
	case TimeWeek:
		return Week, true
	case TimeMonth:
		return Month, true
	}
	return 0, false
}

// checkPropName keeps prop names to what an event may carry as a props
// key, so a name that can never match is refused rather than answered
// with nothing.
func checkPropName(name string) string {
	if name == "" || len(name) > event.DefaultMaxPropKey {
		return "must be 1 to " + strconv.Itoa(event.DefaultMaxPropKey) + " bytes"
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] == 0x7f {
			return "must not hold control characters"
		}
	}
	if !utf8.ValidString(name) {
		return "must be UTF-8"
	}
	return ""
}
