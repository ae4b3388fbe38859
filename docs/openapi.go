// Package docs holds Pulse's OpenAPI description (openapi.yaml), embedded so
// that the binary serves the description of exactly the API it implements.
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml: the REST API as implemented, checked against
// the handlers by systemtest's TestOpenAPI.
//
//go:embed openapi.yaml
var OpenAPI []byte
