package query

import (
	"encoding/json"
	"math/big"

	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
)

// The store keeps the sums of sum and avg metrics in fixed point
// (metric.Scaled); answers give them in units, as JSON numbers written
// from the integers, so that 64.98 reads 64.98 and never
// 64.97999999999999.

type sumSeries struct {
	Labels map[string]string `json:"labels"`
	Points [][2]json.Number  `json:"points"`
}

type avgSeries struct {
	Labels map[string]string `json:"labels"`
	// Points are [bucket start ms, average], the average null where no
	// event carried a number.
	Points [][2]any `json:"points"`
	// Events are [bucket start ms, events averaged], so that a client can
	// weigh buckets into the average of a longer span.
	Events [][2]int64 `json:"events"`
}

type unitsResult struct {
	Metric string `json:"metric"`
	Step   string `json:"step"`
	Series any    `json:"series"`
}

func ms(t int64) json.Number { return json.Number(metric.FormatScaled(t, 0)) }

// inUnits turns a store answer for a sum or avg metric into its JSON.
func inUnits(def metric.Def, r redisagg.Result) unitsResult {
	out := unitsResult{Metric: r.Metric, Step: r.Step}
	if def.Kind == metric.Sum {
		series := make([]sumSeries, len(r.Series))
		for i, sr := range r.Series {
			series[i] = sumSeries{Labels: sr.Labels, Points: make([][2]json.Number, len(sr.Points))}
			for j, p := range sr.Points {
				series[i].Points[j] = [2]json.Number{ms(p[0]), json.Number(metric.FormatScaled(p[1], def.Decimals))}
			}
		}
		out.Series = series
		return out
	}
	series := make([]avgSeries, len(r.Series))
	for i, sr := range r.Series {
		series[i] = avgSeries{Labels: sr.Labels, Points: make([][2]any, len(sr.Points)), Events: make([][2]int64, len(sr.Points))}
		for j, p := range sr.Points {
			var n int64
			if j < len(sr.Samples) {
				n = sr.Samples[j]
			}
			series[i].Points[j] = [2]any{p[0], average(p[1], n, def.Decimals)}
			series[i].Events[j] = [2]int64{p[0], n}
		}
	}
	out.Series = series
	return out
}

// average is sum (10^-decimals units) / n in units: the float64 nearest to
// the exact quotient, so the same sums always give the same number; nil
// when n is 0.
func average(sum, n int64, decimals int) any {
	if n <= 0 {
		return nil
	}
	den := new(big.Int).Mul(big.NewInt(n), big.NewInt(metric.Pow10(decimals)))
	f, _ := new(big.Rat).SetFrac(big.NewInt(sum), den).Float64()
	return f
}

type sumEntry struct {
	Value string      `json:"value"`
	Sum   json.Number `json:"sum"`
}

// topInUnits gives the entries of a sum metric's top-K with their sums in units.
func topInUnits(def metric.Def, top []redisagg.TopEntry) []sumEntry {
	out := make([]sumEntry, len(top))
	for i, e := range top {
		out[i] = sumEntry{Value: e.Value, Sum: json.Number(metric.FormatScaled(e.Count, def.Decimals))}
	}
	return out
}
