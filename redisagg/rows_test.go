package redisagg

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/factrow"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/metric"
)

func TestRowSegmentMatchesScript(t *testing.T) {
	if !strings.Contains(applyLua, "\nlocal ROWSEG = "+strconv.Itoa(rowSegment)+"\n") {
		t.Fatalf("apply.lua's ROWSEG is not rowSegment (%d)", rowSegment)
	}
}

// TestRowSegments appends rows that fill segments exactly, cross one or
// several segment ends, and continue rows written as one string before
// segments, and reads back every length and range.
func TestRowSegments(t *testing.T) {
	const S = rowSegment
	all := backends(t)
	// Segments past the first are keys the script names itself, in the
	// hour's slot: Redis Cluster must accept them.
	all["cluster"] = redistest.StartCluster(t, 3)
	for name, rdb := range all {
		for i, tc := range []struct {
			name   string
			legacy int // bytes of a string written before segments
			adds   []int
		}{
			{"small", 0, []int{10, 20, 30}},
			{"fill exactly", 0, []int{100, S - 100, 7}},
			{"one commit fills one", 0, []int{S, S, 1}},
			{"cross", 0, []int{S - 5, 10, S, 3}},
			{"several segments at once", 0, []int{17, 3*S + 11, 5}},
			{"legacy small", 1000, []int{S, 10}},
			{"legacy large", S + 10, []int{S, 10}},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				site := "s" + strconv.Itoa(i) // a site per case: no flush of the cluster
				now := time.Now()
				st := New(rdb, catalog(t), Config{Now: func() time.Time { return now }})
				hour := factrow.HourOf(now.UnixMilli())
				var want []byte
				fill := func(n int) []byte {
					b := make([]byte, n)
					for i := range b {
						b[i] = byte(len(want) + i*7)
					}
					return b
				}
				if tc.legacy > 0 {
					want = fill(tc.legacy)
					rdb.Set(ctx, st.keys.rows(site, hour), want, 0)
				}
				for i, n := range tc.adds {
					b := fill(n)
					u := metric.NewUpdate()
					u.Rows = map[metric.RowKey][]byte{{Site: site, Hour: hour}: b}
					seq := strconv.Itoa(i + 1)
					if err := st.Apply(ctx, commit(seq, seq, 0, u)); err != nil {
						t.Fatal(err)
					}
					want = append(want, b...)
					lens, err := st.RowLengths(ctx, site, []int64{hour, hour + factrow.HourMs})
					if err != nil || lens[0] != int64(len(want)) || lens[1] != 0 {
						t.Fatalf("after %d appends: lengths %v, %v; want [%d 0]", i+1, lens, err, len(want))
					}
				}
				total := int64(len(want))
				if tc.legacy <= S {
					for seg := int64(0); seg*S < total; seg++ {
						if n := rdb.StrLen(ctx, st.keys.rowSegment(site, hour, seg)).Val(); n != min(S, total-seg*S) {
							t.Fatalf("segment %d holds %d bytes, want %d", seg, n, min(S, total-seg*S))
						}
					}
				}
				for _, r := range [][2]int64{{0, total}, {0, total + 100}, {1, 2}, {S - 3, S + 3}, {S, 2 * S}, {total - 1, total}, {5, 5}, {total, total + 10}} {
					got, err := st.RowBytes(ctx, site, hour, r[0], r[1])
					if err != nil {
						t.Fatal(err)
					}
					lo, hi := min(r[0], total), min(r[1], total)
					if !bytes.Equal(got, want[lo:max(lo, hi)]) {
						t.Fatalf("bytes [%d, %d): %d bytes, want %d", r[0], r[1], len(got), max(lo, hi)-lo)
					}
				}
			})
		}
	}
}
