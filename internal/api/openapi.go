package api

import (
	_ "embed"
	"net/http"
)

// routeOpenAPI serves the API's OpenAPI document.
const routeOpenAPI = "/openapi.json"

// OpenAPI is the OpenAPI 3.1 document of the HTTP API, served at
// /openapi.json. Its tests hold it to the router (every route documented,
// every documented path served) and to the handlers (every example is what
// the API answers).
//
//go:embed openapi.json
var OpenAPI []byte

// serveOpenAPI answers with OpenAPI. It is the same for every request and
// every replica of a release, so caches may keep it a while.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(OpenAPI)
}
