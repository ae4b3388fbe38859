package sites

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/internal/httperr"
)

// AddRequest is the body of POST /v1/admin/sites.
type AddRequest struct {
	Site string `json:"site"`
}

// AddAnswer is the answer of POST /v1/admin/sites.
type AddAnswer struct {
	Site  string `json:"site"`
	Added bool   `json:"added"` // false: it was already in the shared set
}

// ListAnswer is the answer of GET /v1/admin/sites.
type ListAnswer struct {
	Open   bool     `json:"open"`   // --sites has "*": new sites are admitted up to Max
	Max    int      `json:"max"`    // the cap of the shared set in open mode
	Static []string `json:"static"` // --sites
	Shared []string `json:"shared"` // added at run time, by an admin or (open mode) by traffic
}

// RegisterAdmin adds GET and POST /v1/admin/sites to g, which must already
// require the admin token (docs/api.md "Admin").
func (s *Set) RegisterAdmin(g gin.IRouter) {
	wrap := func(f func(*gin.Context) error) gin.HandlerFunc {
		return httperr.Handle(f, httperr.Log(s.cfg.Logger, "admin sites request failed"))
	}
	g.GET("/v1/admin/sites", wrap(func(c *gin.Context) error {
		static, shared, err := s.List(c)
		if err != nil {
			return err
		}
		c.JSON(http.StatusOK, ListAnswer{Open: s.open, Max: s.cfg.Max, Static: nonNil(static), Shared: nonNil(shared)})
		return nil
	}))
	g.POST("/v1/admin/sites", wrap(func(c *gin.Context) error {
		var req AddRequest
		if err := c.ShouldBindJSON(&req); err != nil {
			return httperr.BadRequest("sites: want {\"site\":\"ID\"}: " + err.Error())
		}
		added, err := s.Add(c, req.Site)
		if errors.Is(err, ErrBadSite) {
			return httperr.BadRequest(err.Error())
		}
		if err != nil {
			return err
		}
		c.JSON(http.StatusOK, AddAnswer{Site: req.Site, Added: added})
		return nil
	}))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
