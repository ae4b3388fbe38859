package lease

import (
	"fmt"
	"slices"
	"testing"
)

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}

func set(xs ...string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func TestMakePlan(t *testing.T) {
	s8 := names("s", 8)
	tests := []struct {
		name           string
		me             string
		members        []string
		shards         []string
		held, release  map[string]bool
		sticky         bool
		wantQuota      int
		wantRelease    []string
		wantCandidates []string
		wantWant       int
	}{
		{name: "alone takes all", me: "a", members: []string{"a"}, shards: s8,
			wantQuota: 8, wantCandidates: s8, wantWant: 8},
		{name: "first of three", me: "a", members: []string{"c", "b", "a"}, shards: s8,
			wantQuota: 3, wantCandidates: s8, wantWant: 3},
		{name: "second of three starts at its offset", me: "b", members: []string{"a", "b", "c"}, shards: s8,
			wantQuota: 3, wantCandidates: append(slices.Clone(s8[2:]), s8[:2]...), wantWant: 3},
		{name: "last of three gets the smaller share", me: "c", members: []string{"a", "b", "c"}, shards: s8,
			wantQuota: 2, wantCandidates: append(slices.Clone(s8[5:]), s8[:5]...), wantWant: 2},
		{name: "over share gives up the farthest", me: "a", members: []string{"a", "b", "c"}, shards: s8, held: set(s8...),
			wantQuota: 3, wantRelease: []string{"s07", "s06", "s05", "s04", "s03"}},
		{name: "removed shard given up first", me: "a", members: []string{"a"}, shards: s8[:4], held: set("s00", "s07"),
			wantQuota: 4, wantRelease: []string{"s07"}, wantCandidates: []string{"s01", "s02", "s03"}, wantWant: 3},
		{name: "shard being given up is no candidate", me: "a", members: []string{"a"}, shards: s8[:4], held: set("s00"), release: set("s01"),
			wantQuota: 4, wantCandidates: []string{"s02", "s03"}, wantWant: 3},
		{name: "missing self counts as member", me: "b", members: []string{"a"}, shards: s8[:4],
			wantQuota: 2, wantCandidates: []string{"s02", "s03", "s00", "s01"}, wantWant: 2},
		{name: "no shards", me: "a", members: []string{"a", "b"}, held: set("s00"),
			wantQuota: 0, wantRelease: []string{"s00"}},
		{name: "more members than shards", me: "c", members: []string{"a", "b", "c"}, shards: s8[:2],
			wantQuota: 0},
		{name: "duplicates ignored", me: "a", members: []string{"a", "a", "b"}, shards: []string{"s01", "s00", "s01"},
			wantQuota: 1, wantCandidates: []string{"s00", "s01"}, wantWant: 1},
		{name: "share held", me: "b", members: []string{"a", "b"}, shards: s8[:4], held: set("s02", "s03"),
			wantQuota: 2},
		{name: "sticky keeps above its share", me: "b", members: []string{"a", "b"}, shards: []string{"archive"}, held: set("archive"), sticky: true,
			wantQuota: 0},
		{name: "not sticky hands over", me: "b", members: []string{"a", "b"}, shards: []string{"archive"}, held: set("archive"),
			wantQuota: 0, wantRelease: []string{"archive"}},
		{name: "sticky gives up removed shards", me: "a", members: []string{"a"}, shards: s8[:2], held: set("s00", "s07"), sticky: true,
			wantQuota: 2, wantRelease: []string{"s07"}, wantCandidates: []string{"s01"}, wantWant: 1},
		{name: "sticky above share takes none", me: "a", members: []string{"a", "b"}, shards: s8[:4], held: set("s00", "s01", "s02"), sticky: true,
			wantQuota: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := makePlan(tt.me, tt.members, tt.shards, tt.held, tt.release, tt.sticky)
			if p.quota != tt.wantQuota || p.want != tt.wantWant ||
				!slices.Equal(p.release, tt.wantRelease) || !slices.Equal(p.candidates, tt.wantCandidates) {
				t.Fatalf("plan = %+v\nwant quota %d want %d release %v candidates %v",
					p, tt.wantQuota, tt.wantWant, tt.wantRelease, tt.wantCandidates)
			}
		})
	}
}

// TestMakePlanSplit checks that the shares of all members add up to the
// shards and differ by at most one, for many group sizes.
func TestMakePlanSplit(t *testing.T) {
	for n := 1; n <= 7; n++ {
		for s := 0; s <= 20; s++ {
			members, shards := names("m", n), names("s", s)
			total, lo, hi := 0, s, 0
			for _, me := range members {
				q := makePlan(me, members, shards, nil, nil, false).quota
				total += q
				lo, hi = min(lo, q), max(hi, q)
			}
			if total != s || hi-lo > 1 {
				t.Fatalf("%d members, %d shards: total %d, shares %d..%d", n, s, total, lo, hi)
			}
		}
	}
}
