package query

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/metric"
	"github.com/pulsehq/pulse/redisagg"
)

type stepJSON struct {
	Name      string `json:"name"`
	Width     string `json:"width"`
	Retention string `json:"retention"`
}

type metricJSON struct {
	Name       string     `json:"name"`
	Kind       string     `json:"kind"`
	Dimensions []string   `json:"dimensions"`
	Types      []string   `json:"types,omitempty"`
	Field      string     `json:"field,omitempty"`
	Decimals   *int       `json:"decimals,omitempty"` // sum and avg metrics
	BotsOnly   bool       `json:"bots_only,omitempty"`
	Steps      []stepJSON `json:"steps"`
}

// duration writes d as people write retention: "6h", "3d", "90s".
func duration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

func (h *Handler) metrics(c *gin.Context) error {
	steps := make([]stepJSON, len(h.cat.Steps))
	for i, st := range h.cat.Steps {
		steps[i] = stepJSON{Name: st.Name, Width: duration(st.Width), Retention: duration(st.Retention)}
	}
	out := make([]metricJSON, len(h.cat.Metrics))
	for i, d := range h.cat.Metrics {
		dims := d.Dims
		if dims == nil {
			dims = []string{}
		}
		out[i] = metricJSON{Name: d.Name, Kind: string(d.Kind), Dimensions: dims, Types: d.Types, Field: d.Field,
			BotsOnly: d.BotsOnly, Steps: steps}
		if d.Kind.Summed() {
			out[i].Decimals = &d.Decimals
		}
	}
	c.JSON(http.StatusOK, gin.H{"metrics": out})
	return nil
}

func (h *Handler) query(c *gin.Context) error {
	s, err := site(c)
	if err != nil {
		return err
	}
	def, err := h.metricDef(c)
	if err != nil {
		return err
	}
	from, to, err := h.timeRange(c)
	if err != nil {
		return err
	}
	st, err := h.step(c, from, to)
	if err != nil {
		return err
	}
	groupBy := c.Query("group_by")
	switch {
	case groupBy == "":
	case def.Kind == metric.Unique:
		return bad("group_by", fmt.Sprintf("metric %q counts unique %s and has no dimensions", def.Name, def.Field))
	case !def.HasDim(groupBy):
		return bad("group_by", fmt.Sprintf("metric %q has no dimension %q (it has %v)", def.Name, groupBy, def.Dims))
	}
	limit, err := intParam(c, "limit", 10, h.cfg.MaxLimit)
	if err != nil {
		return err
	}
	r, err := h.st.Series(c.Request.Context(), redisagg.SeriesQuery{Site: s, Metric: def.Name, Step: st.Name,
		From: from, To: to, GroupBy: groupBy, Limit: limit})
	if err != nil {
		return err
	}
	if def.Kind.Summed() {
		c.JSON(http.StatusOK, inUnits(def, r))
		return nil
	}
	c.JSON(http.StatusOK, r)
	return nil
}

// topMaxBuckets mirrors the store's bound on the sorted sets one top-K reads.
const topMaxBuckets = 1500

type topJSON struct {
	Metric string              `json:"metric"`
	Dim    string              `json:"dim"`
	From   int64               `json:"from"`
	To     int64               `json:"to"`
	Top    []redisagg.TopEntry `json:"top"`
}

func (h *Handler) top(c *gin.Context) error {
	s, err := site(c)
	if err != nil {
		return err
	}
	def, err := h.metricDef(c)
	if err != nil {
		return err
	}
	dim := c.Query("dim")
	switch {
	case def.Kind == metric.Unique:
		return bad("metric", fmt.Sprintf("metric %q counts unique %s and has no dimensions to rank", def.Name, def.Field))
	case def.Kind == metric.Avg:
		return bad("metric", fmt.Sprintf("metric %q is an average, which has no top-K (the largest averages are no sum of buckets): use /v1/query with group_by", def.Name))
	case dim == "":
		return bad("dim", fmt.Sprintf("required (one of %v)", def.Dims))
	case !def.HasDim(dim):
		return bad("dim", fmt.Sprintf("metric %q has no dimension %q (it has %v)", def.Name, dim, def.Dims))
	}
	from, to, err := h.timeRange(c)
	if err != nil {
		return err
	}
	var coarsest metric.Step
	for _, st := range h.cat.Steps {
		if st.Width > coarsest.Width {
			coarsest = st
		}
	}
	if n := buckets(coarsest, from, to); n > topMaxBuckets {
		return bad("from", fmt.Sprintf("the range is %d buckets of %s, top-K reads at most %d: shorten it", n, coarsest.Name, topMaxBuckets))
	}
	k, err := intParam(c, "k", 10, h.cfg.MaxK)
	if err != nil {
		return err
	}
	top, err := h.st.Top(c.Request.Context(), redisagg.TopQuery{Site: s, Metric: def.Name, Dim: dim, From: from, To: to, K: k})
	if err != nil {
		return err
	}
	if top == nil {
		top = []redisagg.TopEntry{}
	}
	if def.Kind == metric.Sum {
		c.JSON(http.StatusOK, gin.H{"metric": def.Name, "dim": dim, "from": from, "to": to, "top": topInUnits(def, top)})
		return nil
	}
	c.JSON(http.StatusOK, topJSON{Metric: def.Name, Dim: dim, From: from, To: to, Top: top})
	return nil
}
