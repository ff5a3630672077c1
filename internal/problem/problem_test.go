package problem_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/problem"
)

func TestWriteFillsDefaults(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/v1/users/x?secret=1", nil)
	problem.Write(rec, req, problem.Problem{Status: http.StatusNotFound, Detail: "no such user"})

	require.Equal(t, http.StatusNotFound, rec.Code)
	require.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
	var got map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Equal(t, map[string]any{
		"type":     "about:blank",
		"title":    "Not Found",
		"status":   float64(404),
		"detail":   "no such user",
		"instance": "/v1/users/x", // the path only: a query string may hold secrets
	}, got)
}

func TestWriteListsFieldErrors(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/v1/signup", nil)
	rec.Header().Set("Retry-After", "3")
	problem.Write(rec, req, problem.Problem{
		Type:   problem.TypeValidation,
		Title:  "Invalid fields",
		Status: http.StatusUnprocessableEntity,
		Errors: []problem.FieldError{{Field: "email", Detail: "is required"}, {Field: "name", Detail: "is required"}},
	})
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code)
	require.Equal(t, "3", rec.Header().Get("Retry-After"), "headers set before Write are kept")
	var got problem.Problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Equal(t, problem.TypeValidation, got.Type)
	require.Equal(t, "/v1/signup", got.Instance)
	require.Equal(t, []problem.FieldError{{Field: "email", Detail: "is required"}, {Field: "name", Detail: "is required"}}, got.Errors)
}

func TestWriteWithoutStatusIs500(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	problem.Write(rec, httptest.NewRequest(http.MethodGet, "/", nil), problem.Problem{})
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.JSONEq(t, `{"type":"about:blank","title":"Internal Server Error","status":500,"instance":"/"}`, rec.Body.String())
}
