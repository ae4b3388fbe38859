// Package redisinfo reads the figures benchmarks take from a Redis server's
// INFO answer: its CPU time and what each command cost.
package redisinfo

import (
	"bufio"
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CPU sums used_cpu_sys and used_cpu_user (seconds) of an INFO cpu answer:
// the server's own CPU, its children's (snapshots) left out.
func CPU(info string) time.Duration {
	var secs float64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			secs += f
		}
	}
	return time.Duration(secs * float64(time.Second))
}

// CommandStat is one line of INFO commandstats. The commands a script runs
// count under their own names as well as under the script's EVALSHA.
type CommandStat struct {
	Name        string
	Calls, Usec int64
}

// CommandStats reads the lines of an INFO commandstats answer, like
// cmdstat_evalsha:calls=80,usec=920000,usec_per_call=11500.00,rejected_calls=0,failed_calls=0
// sorted by time spent, most first.
func CommandStats(info string) []CommandStat {
	var out []CommandStat
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		name, fields, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		s := CommandStat{Name: name}
		for f := range strings.SplitSeq(fields, ",") {
			k, v, _ := strings.Cut(f, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				s.Calls = n
			case "usec":
				s.Usec = n
			}
		}
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b CommandStat) int { return cmp.Compare(b.Usec, a.Usec) })
	return out
}
