package redisagg

import (
	"context"
	"strconv"
	"testing"

	"github.com/pulsehq/pulse/factrow"
	"github.com/pulsehq/pulse/internal/redistest"
	"github.com/pulsehq/pulse/stats"
)

// TestCompareRows: rows compare as multisets, so the same rows appended in
// another order with props in another order are no drift, and a missing or
// changed row is.
func TestCompareRows(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	const hour = int64(1_790_000_000_000) / factrow.HourMs * factrow.HourMs
	rows := []stats.Row{
		{TS: hour + 1, Goal: "pageview", Page: "/a", Visitor: 7, Props: []stats.RowProp{{Key: "a", Value: "1"}, {Key: "b", Num: 2, IsNum: true, Value: "2"}}},
		{TS: hour + 2, Goal: "signup", Page: "/b"},
		{TS: hour + 2, Goal: "signup", Page: "/b"},
	}
	enc := func(rs ...stats.Row) string {
		var b []byte
		for i := range rs {
			b = factrow.Append(b, &rs[i], hour)
		}
		return string(b)
	}
	swapped := rows[0]
	swapped.Props = []stats.RowProp{rows[0].Props[1], rows[0].Props[0]}
	changed := rows[1]
	changed.Page = "/c"
	cases := []struct {
		name  string
		a, b  string
		drift int
	}{
		{"same rows, other order", enc(rows...), enc(rows[2], swapped, rows[1]), 0},
		{"a duplicate missing", enc(rows...), enc(rows[0], rows[1]), 1},
		{"a row changed", enc(rows...), enc(rows[0], changed, rows[2]), 2},
		{"only in one namespace", enc(rows...), "", 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rdb.FlushAll(ctx)
			a, b := KeysFor("a"), KeysFor("b")
			rdb.Set(ctx, a.rows("demo", hour), tc.a, 0)
			if tc.b != "" {
				rdb.Set(ctx, b.rows("demo", hour), tc.b, 0)
			}
			rep, err := Compare(ctx, rdb, catalog(t), "a", "b", hour, hour+factrow.HourMs)
			if err != nil {
				t.Fatal(err)
			}
			var got []Drift
			for _, d := range rep.Drift {
				if d.Metric == RowsMetric {
					got = append(got, d)
				}
			}
			if tc.drift == 0 && len(got) != 0 || tc.drift > 0 && (len(got) != 1 || got[0].Value != strconv.Itoa(tc.drift)+" rows differ") {
				t.Errorf("drift %+v, want %d rows differing", got, tc.drift)
			}
		})
	}
}
