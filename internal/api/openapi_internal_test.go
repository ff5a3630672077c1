package api

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
)

// loadOpenAPI loads and validates the embedded document with kin-openapi,
// examples included (each must match its schema).
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPI)
	require.NoError(t, err)
	require.True(t, doc.IsOpenAPI31OrLater(), "an OpenAPI 3.1 document")
	require.NoError(t, doc.Validate(loader.Context, openapi3.EnableExamplesValidation(), openapi3.EnableSchemaFormatValidation()))
	return doc
}

// TestOpenAPIDocumentsExactlyTheRoutesServed walks the real router: every
// route it serves is documented, every documented operation is served.
func TestOpenAPIDocumentsExactlyTheRoutesServed(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			documented = append(documented, method+" "+path)
			require.NotEmpty(t, op.OperationID, "%s %s has an operationId", method, path)
			require.NotEmpty(t, op.Responses.Map(), "%s %s documents its responses", method, path)
		}
	}

	cfg := Config{SignupRateLimit: new(SignupRateLimitDefault), Registry: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)}.withDefaults()
	router, err := newRouter(pgtest.NewPool(t), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	var served []string
	require.NoError(t, chi.Walk(router.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served = append(served, method+" "+strings.TrimSuffix(route, "/"))
		return nil
	}))
	slices.Sort(documented)
	slices.Sort(served)
	require.NotEmpty(t, served)
	require.Equal(t, served, documented, "routes served (left) and documented (right)")
}

// TestOpenAPIDocumentIsValid31 also checks what the document promises
// every client: a request id on every response, and RFC 9457 problems for
// every error of the /v1 API (the probes answer in plain text).
func TestOpenAPIDocumentIsValid31(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	require.Equal(t, "3.1.0", doc.OpenAPI)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code, resp := range op.Responses.Map() {
				where := method + " " + path + " " + code
				require.Contains(t, resp.Value.Headers, RequestIDHeader, where)
				if code >= "400" && strings.HasPrefix(path, "/v1/") {
					require.NotNil(t, resp.Value.Content.Get("application/problem+json"), "%s is a problem", where)
				}
			}
		}
	}
}
