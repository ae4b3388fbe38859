package query

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/metric"
)

var siteRE = regexp.MustCompile(`^[a-z0-9_.-]{1,64}$`)

func site(c *gin.Context) (string, error) {
	s := c.Query("site")
	if s == "" {
		return "", bad("site", "required")
	}
	if !siteRE.MatchString(s) {
		return "", bad("site", fmt.Sprintf("%q is not a site id ([a-z0-9_.-]{1,64})", s))
	}
	return s, nil
}

// parseTime reads "now", a relative time ("-15m", "-2h", "-7d", "-30s"),
// unix milliseconds, or RFC 3339, and returns unix ms.
func parseTime(param, v string, now time.Time) (int64, error) {
	switch {
	case v == "now":
		return now.UnixMilli(), nil
	case strings.HasPrefix(v, "-"):
		var d time.Duration
		if days, ok := strings.CutSuffix(v[1:], "d"); ok {
			n, err := strconv.Atoi(days)
			if err != nil || n < 0 || n > 100000 {
				return 0, bad(param, fmt.Sprintf("%q: relative days must look like -7d", v))
			}
			d = time.Duration(n) * 24 * time.Hour
		} else {
			var err error
			if d, err = time.ParseDuration(v[1:]); err != nil || d < 0 {
				return 0, bad(param, fmt.Sprintf("%q: relative times look like -15m, -2h or -7d", v))
			}
		}
		return now.Add(-d).UnixMilli(), nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, bad(param, fmt.Sprintf("%q: unix milliseconds must not be negative", v))
		}
		return n, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, bad(param, fmt.Sprintf("%q is not now, a relative time (-15m), unix milliseconds or RFC 3339", v))
	}
	return t.UnixMilli(), nil
}

// timeRange reads from (default -15m) and to (default now).
func (h *Handler) timeRange(c *gin.Context) (from, to int64, err error) {
	now := h.cfg.Now()
	if from, err = parseTime("from", c.DefaultQuery("from", "-15m"), now); err != nil {
		return 0, 0, err
	}
	if to, err = parseTime("to", c.DefaultQuery("to", "now"), now); err != nil {
		return 0, 0, err
	}
	if from > to {
		return 0, 0, bad("from", fmt.Sprintf("%s is after to %s", msTime(from), msTime(to)))
	}
	return from, to, nil
}

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

func (h *Handler) metricDef(c *gin.Context) (metric.Def, error) {
	name := c.Query("metric")
	if name == "" {
		return metric.Def{}, bad("metric", "required")
	}
	d, ok := h.cat.Metric(name)
	if !ok {
		return metric.Def{}, bad("metric", fmt.Sprintf("unknown metric %q (GET /v1/metrics lists them)", name))
	}
	return d, nil
}

func buckets(st metric.Step, from, to int64) int64 {
	return (st.Bucket(to)-st.Bucket(from))/st.Width.Milliseconds() + 1
}

// step returns the step asked for, or by default the finest step giving at
// most TargetBuckets buckets whose retention still holds from.
func (h *Handler) step(c *gin.Context, from, to int64) (metric.Step, error) {
	if name := c.Query("step"); name != "" {
		st, ok := h.cat.Step(name)
		if !ok {
			names := make([]string, len(h.cat.Steps))
			for i, s := range h.cat.Steps {
				names[i] = s.Name
			}
			return metric.Step{}, bad("step", fmt.Sprintf("unknown step %q (one of %s)", name, strings.Join(names, ", ")))
		}
		if n := buckets(st, from, to); n > int64(h.cfg.MaxBuckets) {
			return metric.Step{}, bad("step", fmt.Sprintf("the range is %d buckets of %s, at most %d: use a coarser step or a shorter range", n, st.Name, h.cfg.MaxBuckets))
		}
		return st, nil
	}
	now := h.cfg.Now().UnixMilli()
	var best, coarsest metric.Step
	for _, st := range h.cat.Steps {
		if coarsest.Width < st.Width {
			coarsest = st
		}
		if buckets(st, from, to) > int64(h.cfg.TargetBuckets) || st.ExpireAt(st.Bucket(from)) <= now {
			continue
		}
		if best.Width == 0 || st.Width < best.Width {
			best = st
		}
	}
	if best.Width == 0 {
		best = coarsest
	}
	if n := buckets(best, from, to); n > int64(h.cfg.MaxBuckets) {
		return metric.Step{}, bad("from", fmt.Sprintf("the range is %d buckets of the coarsest step %s, at most %d: shorten it", n, best.Name, h.cfg.MaxBuckets))
	}
	return best, nil
}

func intParam(c *gin.Context, param string, def, max int) (int, error) {
	v := c.Query(param)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, bad(param, fmt.Sprintf("%q must be a whole number from 1 to %d", v, max))
	}
	return n, nil
}
