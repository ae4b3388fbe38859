package node

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/pulsehq/pulse/docs"
)

// registerOpenAPI serves the OpenAPI description of the API at
// GET /v1/openapi.yaml, without a token: it is documentation.
func registerOpenAPI(r gin.IRouter) {
	r.GET("/v1/openapi.yaml", func(c *gin.Context) {
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "application/yaml; charset=utf-8", docs.OpenAPI)
	})
}

// logRoutes logs every registered route at debug level, so an operator (and
// systemtest's TestOpenAPI) can see exactly what a node with its roles serves.
func logRoutes(log *slog.Logger, r *gin.Engine) {
	for _, ri := range r.Routes() {
		log.Debug("route", "method", ri.Method, "path", ri.Path)
	}
}
