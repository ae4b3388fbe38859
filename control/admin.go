package control

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/namespace"
)

// RegisterAdmin adds the admin routes to g, which must already require the
// admin token (docs/api.md "Admin"): namespaces, replay, promote, drop,
// verify, jobs.
func (r *Runtime) RegisterAdmin(g gin.IRouter) {
	g.GET("/v1/admin/namespaces", r.adminWrap(func(c *gin.Context) error {
		d, err := r.Namespaces(c)
		if err != nil {
			return err
		}
		if d.Namespaces == nil {
			d.Namespaces = []namespace.Info{}
		}
		c.JSON(http.StatusOK, d)
		return nil
	}))
	g.POST("/v1/admin/namespaces/:name/promote", r.adminWrap(func(c *gin.Context) error {
		name := c.Param("name")
		prev, err := r.Promote(c, name)
		if err != nil {
			return err
		}
		c.JSON(http.StatusOK, gin.H{"current": name, "previous": prev})
		return nil
	}))
	g.DELETE("/v1/admin/namespaces/:name", r.adminWrap(func(c *gin.Context) error {
		name := c.Param("name")
		n, err := r.Drop(c, name)
		if err != nil {
			return err
		}
		c.JSON(http.StatusOK, gin.H{"dropped": name, "keys": n})
		return nil
	}))
	g.POST("/v1/admin/replay", r.adminWrap(r.postReplay))
	g.POST("/v1/admin/verify", r.adminWrap(r.postVerify))
	g.GET("/v1/admin/jobs", r.adminWrap(func(c *gin.Context) error {
		c.JSON(http.StatusOK, gin.H{"jobs": r.Jobs()})
		return nil
	}))
	g.GET("/v1/admin/jobs/:id", r.adminWrap(func(c *gin.Context) error {
		st, ok := r.Job(c.Param("id"))
		if !ok {
			c.JSON(http.StatusNotFound, gin.H{"error": "no job " + c.Param("id") + " (jobs live in memory: a restart forgets them)"})
			return nil
		}
		c.JSON(http.StatusOK, st)
		return nil
	}))
}

func (r *Runtime) postReplay(c *gin.Context) error {
	var req ReplayRequest
	if err := c.ShouldBindJSON(&req); err != nil {
		return badRequest{err}
	}
	if req.From < 0 || req.To < 0 || (req.To != 0 && req.From >= req.To) {
		return badRequest{errors.New("replay: want 0 <= from < to (unix ms), or neither for everything")}
	}
	// A config that does not parse is the caller's mistake (400, with
	// its line and field), found before anything is registered.
	if _, err := (namespace.Info{MetricsConfig: req.MetricsConfig}).Catalog(); err != nil {
		return badRequest{fmt.Errorf("replay: metrics_config: %w", err)}
	}
	st, err := r.Replay(c, req)
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, st)
	return nil
}

func (r *Runtime) postVerify(c *gin.Context) error {
	var req VerifyRequest
	if err := c.ShouldBindJSON(&req); err != nil {
		return badRequest{err}
	}
	if req.From >= req.To {
		return badRequest{errors.New("verify: want from < to (unix ms)")}
	}
	st, err := r.Verify(c, req)
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, st)
	return nil
}

type badRequest struct{ err error }

func (b badRequest) Error() string { return b.err.Error() }

// adminWrap maps errors to statuses: registry conflicts 409, unknown
// namespaces 404, bad names and bodies 400, no stream 503, the rest 500.
func (r *Runtime) adminWrap(f func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		err := f(c)
		if err == nil {
			return
		}
		var br badRequest
		status := http.StatusInternalServerError
		switch {
		case errors.As(err, &br), errors.Is(err, namespace.ErrBadName):
			status = http.StatusBadRequest
		case errors.Is(err, namespace.ErrNotFound):
			status = http.StatusNotFound
		case errors.Is(err, namespace.ErrConflict):
			status = http.StatusConflict
		case errors.Is(err, ErrNoStream):
			status = http.StatusServiceUnavailable
		default:
			r.log.Error("admin request failed", "path", c.Request.URL.Path, "err", err)
		}
		c.JSON(status, gin.H{"error": err.Error()})
	}
}
