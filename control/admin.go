package control

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/internal/httperr"
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
			return httperr.New(http.StatusNotFound, "no job "+c.Param("id")+" (jobs live in memory: a restart forgets them)")
		}
		c.JSON(http.StatusOK, st)
		return nil
	}))
}

func (r *Runtime) postReplay(c *gin.Context) error {
	var req ReplayRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.From < 0 || req.To < 0 || (req.To != 0 && req.From >= req.To) {
		return badRequest(errors.New("replay: want 0 <= from < to (unix ms), or neither for everything"))
	}
	// A config that does not parse is the caller's mistake (400, with
	// its line and field), found before anything is registered.
	if _, err := (namespace.Info{MetricsConfig: req.MetricsConfig}).Catalog(); err != nil {
		return badRequest(fmt.Errorf("replay: metrics_config: %w", err))
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
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.From >= req.To {
		return badRequest(errors.New("verify: want from < to (unix ms)"))
	}
	st, err := r.Verify(c, req)
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, st)
	return nil
}

// adminErrors maps the control plane's errors to statuses: bad names 400,
// unknown namespaces 404, registry conflicts 409, no stream 503. The rest
// are 500 with their text: the caller holds the admin token, and the
// cause is what an operator needs to act.
func adminErrors(err error) *httperr.Error {
	if e := httperr.Sentinels(
		httperr.Sentinel{Err: namespace.ErrBadName, Status: http.StatusBadRequest},
		httperr.Sentinel{Err: namespace.ErrNotFound, Status: http.StatusNotFound},
		httperr.Sentinel{Err: namespace.ErrConflict, Status: http.StatusConflict},
		httperr.Sentinel{Err: ErrNoStream, Status: http.StatusServiceUnavailable},
	)(err); e != nil {
		return e
	}
	return httperr.Wrap(http.StatusInternalServerError, err.Error(), err)
}

// adminWrap answers a handler's error as every Pulse route does
// (internal/httperr), with the control plane's statuses.
func (r *Runtime) adminWrap(f func(c *gin.Context) error) gin.HandlerFunc {
	return httperr.Handle(f, httperr.Classify(adminErrors), httperr.Log(r.log, "admin request failed"))
}

// maxAdminBody bounds an admin request body. The largest, a replay's
// metrics config, is a few KB; the bound keeps a leaked or mistaken admin
// call from holding a handler and its memory for the read timeout.
const maxAdminBody = 1 << 20

// bindJSON decodes c's body into v: 413 past maxAdminBody, 400 if it is
// not the JSON v wants.
func bindJSON(c *gin.Context, v any) error {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxAdminBody)
	if err := c.ShouldBindJSON(v); err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return httperr.New(http.StatusRequestEntityTooLarge, fmt.Sprintf("admin request body larger than %d bytes", maxAdminBody))
		}
		return badRequest(err)
	}
	return nil
}

// badRequest is a 400 whose message is err's text.
func badRequest(err error) error {
	return httperr.Wrap(http.StatusBadRequest, err.Error(), err)
}
