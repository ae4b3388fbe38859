package bench

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pulsehq/pulse/internal/redisinfo"
)

// keptUp says whether a system kept up with the offered rate, and if not
// why: every scheduled request was sent and answered 202, and at the end of
// the load the aggregator was less than one second of the offered events
// behind (a system that cannot keep up falls further behind every second).
func (f e2eFigures) keptUp(rate float64) string {
	switch ok := f.stats.Status[http.StatusAccepted]; {
	case f.notOffered > 0:
		return fmt.Sprintf("no: %d requests not offered", f.notOffered)
	case ok < f.requests:
		return fmt.Sprintf("no: %d requests not answered 202", f.requests-ok)
	case float64(f.endLag) > rate:
		return fmt.Sprintf("no: %d events behind at the end (more than 1 s of load)", f.endLag)
	}
	return "yes"
}

// perEvent formats d divided over n events in µs.
func perEvent(d time.Duration, n int64) string {
	if n <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f µs", float64(d.Nanoseconds())/1e3/float64(n))
}

func mib(kib int64) string { return fmt.Sprintf("%.0f MiB", float64(kib)/1024) }

// e2eRow is one line of the table: a label and a cell per system.
type e2eRow struct {
	label string
	cell  func(f e2eFigures) string
}

func e2eRows(cfg E2EConfig) []e2eRow {
	return []e2eRow{
		{fmt.Sprintf("offered events/s (%d-event requests/s), open loop over %d connections", cfg.Batch, cfg.Connections), func(f e2eFigures) string {
			return fmt.Sprintf("%.0f (%.0f)", cfg.Rate, cfg.Rate/float64(cfg.Batch))
		}},
		{"requests: scheduled / not offered (no free connection) / answered 202 / other answers / transport errors", func(f e2eFigures) string {
			return fmt.Sprintf("%d / %d / %d / %s / %d", f.scheduled, f.notOffered, f.stats.Status[http.StatusAccepted], otherStatuses(f.stats.Status), f.stats.Status[0])
		}},
		{fmt.Sprintf("accepted events/s over the %s window (after %s of warm-up)", cfg.Duration, cfg.Warmup), func(f e2eFigures) string {
			return fmt.Sprintf("%.0f", f.acceptedRate)
		}},
		{"**applied events/s, sustained** (same window)", func(f e2eFigures) string {
			return fmt.Sprintf("**%.0f** (%.0f%% of offered)", f.appliedRate, 100*f.appliedRate/cfg.Rate)
		}},
		{"kept up with the offered rate", func(f e2eFigures) string { return f.keptUp(cfg.Rate) }},
		{"lag, events accepted and not applied: max under load / at the end of the load", func(f e2eFigures) string {
			return fmt.Sprintf("%d / %d", f.maxLag, f.endLag)
		}},
		{"drain after the load", func(f e2eFigures) string {
			if !f.drained {
				return fmt.Sprintf("not drained after %s: %d behind", round(f.drainTime), f.final.lag())
			}
			return round(f.drainTime).String()
		}},
		{"events: answered 202 / accepted / applied / other outcomes / the subscriber's total", func(f e2eFigures) string {
			return fmt.Sprintf("%d / %d / %d / %d / %d", f.stats.Events, f.final.Accepted, f.final.Applied, f.final.Read-f.final.Applied, f.subscriberTotal)
		}},
		{"freshness 202 → delta: p50 / p99 / max (requests of the window; never covered)", func(f e2eFigures) string {
			return fmt.Sprintf("%s / **%s** / %s (%d; %d)", round(f.fresh.Percentile(50)), round(f.fresh.Percentile(99)), round(f.fresh.Percentile(100)), len(f.fresh), f.freshMissed)
		}},
		{"pulse RSS: rest / peak sampled every 50 ms / VmHWM", func(f e2eFigures) string {
			return fmt.Sprintf("%s / %s / **%s**", mib(f.restRSS), mib(f.peakRSS), mib(f.hwm))
		}},
		{"redis-server RSS, peak", func(f e2eFigures) string {
			if f.embedded {
				return "— (in pulse's RSS)"
			}
			return mib(f.redisPeakRSS)
		}},
		{"pulse CPU per applied event (warm-up end to drained)", func(f e2eFigures) string { return perEvent(f.pulseCPU, f.events) }},
		{"**Redis CPU per applied event** (redis-server: INFO cpu)", func(f e2eFigures) string {
			if f.embedded {
				return perEvent(f.pulseCPU, f.events) + " (embedded: the whole pulse process, Redis runs in it)"
			}
			return "**" + perEvent(f.redisCPU, f.events) + "**"
		}},
		{"pulse + Redis CPU per applied event", func(f e2eFigures) string { return perEvent(f.pulseCPU+f.redisCPU, f.events) }},
		{"Redis commands, most time first (INFO commandstats): µs per call × calls", func(f e2eFigures) string { return topCommands(f.cmds, 3) }},
		{"load client CPU per request (the bench process: client, subscriber, samplers)", func(f e2eFigures) string {
			return perEvent(f.clientCPU, f.requests)
		}},
		{"load average (1 min) at the end", func(f e2eFigures) string { return f.load }},
	}
}

// printE2E prints one column per system.
func printE2E(w io.Writer, cfg E2EConfig, figs []e2eFigures) {
	fmt.Fprintf(w, "| measurement |")
	for _, f := range figs {
		fmt.Fprintf(w, " pulse serve, %s |", f.system)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|", len(figs)))
	for _, r := range e2eRows(cfg) {
		fmt.Fprintf(w, "| %s |", r.label)
		for _, f := range figs {
			fmt.Fprintf(w, " %s |", r.cell(f))
		}
		fmt.Fprintln(w)
	}
}

// otherStatuses lists the answers other than 202 by status, "0" when
// there were none.
func otherStatuses(status map[int]int64) string {
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(status)) {
		if code != http.StatusAccepted && code != 0 {
			parts = append(parts, fmt.Sprintf("%d× %d", status[code], code))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}

// topCommands formats the first n commands.
func topCommands(cmds []redisinfo.CommandStat, n int) string {
	if len(cmds) == 0 {
		return "—"
	}
	var parts []string
	for _, c := range cmds[:min(n, len(cmds))] {
		parts = append(parts, fmt.Sprintf("%s %.0f µs × %d", strings.ToUpper(c.Name), float64(c.Usec)/float64(max(c.Calls, 1)), c.Calls))
	}
	return strings.Join(parts, "; ")
}
