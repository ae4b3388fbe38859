package querystudy

import (
	"sort"
	"strings"
)

// answers are the results of Q1-Q5, compared across designs.
type answers struct {
	q1Visitors, q1Pageviews int
	q2                      map[string]int     // page -> pageviews, referrer contains "google", 7d
	q3                      map[[2]int64]int   // (goal id of goals, day start ms) -> events, plan is "pro", 30d
	q4Visitors              int                // last 5 minutes
	q4                      map[string]int     // page -> pageviews, last 30 minutes
	q5                      map[string]float64 // page -> sum props.price, 30d
	visits                  int                // query-time sessionization over the 30d
}

// scanRange returns the segments with start in [from, to), in time order.
func scanRange(segs map[int64]*segment, from, to int64) []*segment {
	var out []*segment
	for h, s := range segs {
		if h >= from && h < to {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out
}

func goalIndex(g string) int64 {
	for i, v := range goals {
		if v == g {
			return int64(i)
		}
	}
	return -1
}

// q1 counts distinct visitors (a union: an exact hash set) and pageviews.
func q1(segs []*segment) (visitors, pageviews int) {
	seen := make(map[uint64]struct{}, 1<<14)
	for _, s := range segs {
		pv := s.goals.ids["pageview"]
		_, any := s.goals.ids["pageview"]
		for _, v := range s.distinctVisitors() {
			seen[v] = struct{}{}
		}
		if any {
			for _, g := range s.goal {
				if int(g) == pv {
					pageviews++
				}
			}
		}
	}
	return len(seen), pageviews
}

// q2 is pageviews by page where the referrer contains "google".
func q2(segs []*segment) map[string]int {
	out := map[string]int{}
	for _, s := range segs {
		pv, ok := s.goals.ids["pageview"]
		if !ok {
			continue
		}
		match := make([]bool, len(s.refs.values))
		for i, r := range s.refs.values {
			match[i] = strings.Contains(r, "google")
		}
		counts := make([]int, len(s.pages.values))
		for i, r := range s.ref {
			if match[r] && int(s.goal[i]) == pv {
				counts[s.page[i]]++
			}
		}
		for p, n := range counts {
			if n > 0 {
				out[s.pages.values[p]] += n
			}
		}
	}
	return out
}

// q3 is events by goal and UTC day where plan is "pro".
func q3(segs []*segment) map[[2]int64]int {
	out := map[[2]int64]int{}
	for _, s := range segs {
		pro, ok := s.plans.ids["pro"]
		if !ok {
			continue
		}
		day := s.start - s.start%86_400_000
		counts := make([]int, len(s.goals.values))
		for i, p := range s.plan {
			if int(p) == pro {
				counts[s.goal[i]]++
			}
		}
		for g, n := range counts {
			if n > 0 {
				out[[2]int64{goalIndex(s.goals.values[g]), day}] += n
			}
		}
	}
	return out
}

// q4 is the realtime pair: visitors since now-5m, pageviews by page since now-30m.
func q4(segs []*segment, now int64) (int, map[string]int) {
	seen := map[uint64]struct{}{}
	out := map[string]int{}
	for _, s := range segs {
		pv, ok := s.goals.ids["pageview"]
		for i, t := range s.ts {
			at := s.start + int64(t)
			if at >= now || at < now-30*60_000 {
				continue
			}
			if at >= now-5*60_000 {
				seen[s.visitor[i]] = struct{}{}
			}
			if ok && int(s.goal[i]) == pv {
				out[s.pages.values[s.page[i]]]++
			}
		}
	}
	return len(seen), out
}

// q5 is sum of props.price by page.
func q5(segs []*segment) map[string]float64 {
	out := map[string]float64{}
	for _, s := range segs {
		for k, i := range s.priceAt {
			out[s.pages.values[s.page[i]]] += s.price[k]
		}
	}
	return out
}

// visits counts sessions (a visit ends after 30 minutes without an event of
// its visitor) over time-ordered segments: what issue 13 needs, computed at
// query time from visitor and time alone.
func visits(segs []*segment) int {
	last := make(map[uint64]int64, 1<<14)
	n := 0
	for _, s := range segs {
		idx := make([]int, len(s.ts))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return s.ts[idx[a]] < s.ts[idx[b]] })
		for _, i := range idx {
			at := s.start + int64(s.ts[i])
			if l, ok := last[s.visitor[i]]; !ok || at-l > 30*60_000 {
				n++
			}
			last[s.visitor[i]] = at
		}
	}
	return n
}

// answerAll runs Q1-Q5 over the segments of days [0, days), "now" being the
// end of the last day.
func answerAll(segs map[int64]*segment, days int) answers {
	from := studyStart.UnixMilli()
	to := from + int64(days)*86_400_000
	all := scanRange(segs, from, to)
	var a answers
	a.q1Visitors, a.q1Pageviews = q1(all)
	a.q2 = q2(scanRange(segs, to-7*86_400_000, to))
	a.q3 = q3(all)
	a.q4Visitors, a.q4 = q4(scanRange(segs, to-3_600_000, to), to)
	a.q5 = q5(all)
	a.visits = visits(all)
	return a
}
