package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/api"
	"github.com/outboxd/outboxd/internal/pgtest"
)

func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// A CHECK that fails on insert: PostgreSQL's error detail then lists the
	// failing row, password hash included, and the error gets logged.
	_, err := b.pool.Exec(ctx, `ALTER TABLE users ADD CONSTRAINT no_mallory CHECK (name <> 'Mallory')`)
	require.NoError(t, err)
	const password = "hunter2-but-longer"

	ok := b.signup(t, signupBody(t, "ada@example.com", "Ada", password), map[string]string{api.RequestIDHeader: "req-ok"})
	u := requireCreated(t, ok)
	failed := b.signup(t, signupBody(t, "mallory@example.com", "Mallory", password), map[string]string{api.RequestIDHeader: "req-failed"})
	requireProblem(t, failed, http.StatusInternalServerError, "/v1/signup")

	var hash string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, u.ID).Scan(&hash))
	logs := b.logs.String()
	require.NotContains(t, logs, password)
	require.NotContains(t, logs, hash)
	require.NotContains(t, logs, "$argon2id$", "no hash, not even from a database error's detail")
	require.Contains(t, logs, "no_mallory", "the failure itself is logged")

	var sawAccess, sawError bool
	for _, line := range b.logs.Records(t, "") {
		switch line["msg"] {
		case "http request":
			if line["request_id"] == "req-ok" {
				sawAccess = true
				require.Equal(t, "POST", line["method"])
				require.Equal(t, "/v1/signup", line["route"])
				require.Equal(t, float64(201), line["status"])
				require.Greater(t, line["bytes"], float64(0))
				require.Contains(t, line, "duration")
			}
		case "signup request failed":
			sawError = true
			require.Equal(t, "req-failed", line["request_id"], "every line of a request carries its id")
			require.Equal(t, "ERROR", line["level"])
		}
	}
	require.True(t, sawAccess, "access log line of the signup")
	require.True(t, sawError, "error line of the failed signup")
}

func TestRequestIDIsAcceptedOrGenerated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	tests := []struct {
		name, sent string
		keep       bool
	}{
		{"sane id kept", "edge-4f2a:1/x", true},
		{"none sent", "", false},
		{"spaces replaced", "two words", false},
		{"too long replaced", strings.Repeat("x", 129), false},
		{"JSON injection replaced", `x","level":"ERROR`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := map[string]string{}
			if tt.sent != "" {
				h[api.RequestIDHeader] = tt.sent
			}
			r := b.do(t, http.MethodGet, "/v1/users/not-a-uuid", "", h)
			got := r.header.Get(api.RequestIDHeader)
			if tt.keep {
				require.Equal(t, tt.sent, got)
			} else {
				require.Regexp(t, uuidRE, got)
			}
		})
	}
}

func TestMetricsCountRequestsByRoute(t *testing.T) {
	t.Parallel()
	b := setup(t)
	requireCreated(t, b.signup(t, signupBody(t, "ada@example.com", "Ada", goodPassword), nil))
	b.do(t, http.MethodGet, "/v1/users/01890a5d-ac96-774b-bcce-b302099a8057", "", nil)
	b.do(t, http.MethodGet, "/wp-login.php", "", nil)

	r := b.do(t, http.MethodGet, "/metrics", "", nil)
	require.Equal(t, http.StatusOK, r.status)
	m := string(r.body)
	require.Contains(t, m, `outboxd_http_requests_total{code="201",method="POST",route="/v1/signup"} 1`)
	require.Contains(t, m, `outboxd_http_requests_total{code="404",method="GET",route="/v1/users/{id}"} 1`)
	require.Contains(t, m, `outboxd_http_requests_total{code="404",method="GET",route="unmatched"} 1`, "raw paths never become labels")
	require.Contains(t, m, `outboxd_http_request_duration_seconds_count{method="POST",route="/v1/signup"} 1`)
	require.Contains(t, m, "\noutboxd_signups_total 1\n")
	require.NotContains(t, m, "go_goroutines", "a caller's registry gets only the API's metrics")
}

func TestDefaultRegistryHasGoAndProcessCollectors(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *api.Config) { c.Registry = nil })
	m := string(b.do(t, http.MethodGet, "/metrics", "", nil).body)
	require.Contains(t, m, "go_goroutines")
	require.Contains(t, m, "process_open_fds")
	require.Contains(t, m, "outboxd_signups_total")
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/healthz", "", nil).status)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/readyz", "", nil).status)

	t.Run("database unreachable", func(t *testing.T) {
		t.Parallel()
		pool := pgtest.NewPool(t)
		srv, err := api.New(pool, api.Config{SignupRateLimit: new(0), Registry: prometheus.NewRegistry()})
		require.NoError(t, err)
		ts := httptest.NewServer(srv.Handler())
		t.Cleanup(ts.Close)
		pool.Close()

		resp, err := ts.Client().Get(ts.URL + "/readyz")
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		resp, err = ts.Client().Get(ts.URL + "/healthz")
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode, "alive even when the database is not")
	})
}
