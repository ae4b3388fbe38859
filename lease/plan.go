package lease

import (
	"slices"
)

// plan is one round's rebalancing decision for one member.
type plan struct {
	quota      int
	release    []string // held leases to give up, least wanted first
	candidates []string // shards to try to take, most wanted first
	want       int      // how many of the candidates to take
}

// makePlan decides what me keeps, gives up and tries to take, given the live
// members, the current shards, the leases it holds and those it is already
// giving up. Members sorted by id get S/N shards each and the first S%N one
// more. Each member prefers the shards starting at its own offset in the
// sorted shard list, so members that start together mostly try different
// shards and a member gives up the shards farthest from its offset. A
// sticky member keeps every listed shard it holds, even above its share:
// it only takes fewer.
func makePlan(me string, members, shards []string, held, releasing map[string]bool, sticky bool) plan {
	members = sortedUnique(members)
	if _, found := slices.BinarySearch(members, me); !found {
		members = sortedUnique(append(members, me))
	}
	shards = sortedUnique(shards)
	idx, _ := slices.BinarySearch(members, me)
	n, s := len(members), len(shards)
	var p plan
	p.quota = s / n
	if idx < s%n {
		p.quota++
	}
	off := 0
	if s > 0 {
		off = idx * s / n
	}
	order := append(slices.Clone(shards[off:]), shards[:off]...)

	inList := make(map[string]bool, s)
	for _, sh := range shards {
		inList[sh] = true
	}
	var gone []string
	for sh := range held {
		if !inList[sh] {
			gone = append(gone, sh)
		}
	}
	slices.Sort(gone)
	p.release = gone

	var keep []string
	for _, sh := range order {
		switch {
		case held[sh]:
			keep = append(keep, sh)
		case !releasing[sh]:
			p.candidates = append(p.candidates, sh)
		}
	}
	if len(keep) > p.quota && !sticky {
		extra := keep[p.quota:]
		for i := len(extra) - 1; i >= 0; i-- {
			p.release = append(p.release, extra[i])
		}
		keep = keep[:p.quota]
	}
	p.want = max(p.quota-len(keep), 0)
	if p.want == 0 {
		p.candidates = nil
	}
	return p
}

func sortedUnique(xs []string) []string {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return slices.Compact(xs)
}
