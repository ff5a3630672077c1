package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/api"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/problem"
	"github.com/outboxd/outboxd/internal/signup"
	"github.com/outboxd/outboxd/internal/testlog"
)

func TestMain(m *testing.M) {
	pgtest.Main(m)
}

// testBundle is one API server on its own database.
type testBundle struct {
	url      string
	client   *http.Client
	pool     *pgxpool.Pool
	logs     *testlog.Buffer
	registry *prometheus.Registry
}

// setup starts the real Handler on a fresh database, with cheap argon2 and
// no rate limit unless configure says otherwise. Logs are captured as JSON.
func setup(t testing.TB, configure ...func(*api.Config)) *testBundle {
	t.Helper()
	pool := pgtest.NewPool(t)
	logs := &testlog.Buffer{}
	cfg := api.Config{
		SignupRateLimit: new(0),
		Argon2:          signup.MinimalParams,
		Logger:          slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry:        prometheus.NewRegistry(),
	}
	for _, c := range configure {
		c(&cfg)
	}
	srv, err := api.New(pool, cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &testBundle{url: ts.URL, client: ts.Client(), pool: pool, logs: logs, registry: cfg.Registry}
}

// response is an answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (b *testBundle) do(t testing.TB, method, path, body string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, b.url+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func (b *testBundle) signup(t testing.TB, body string, header map[string]string) response {
	t.Helper()
	return b.do(t, http.MethodPost, "/v1/signup", body, header)
}

func (b *testBundle) count(t testing.TB, table string) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

// signupBody is a request body for the given fields.
func signupBody(t testing.TB, email, name, password string) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"email": email, "name": name, "password": password})
	require.NoError(t, err)
	return string(b)
}

// createdUser is the 201 body of a signup.
type createdUser struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
}

// requireCreated checks a 201 answer and returns its user.
func requireCreated(t testing.TB, r response) createdUser {
	t.Helper()
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	var u createdUser
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&u))
	require.NotEmpty(t, u.ID)
	require.Equal(t, "/v1/users/"+u.ID, r.header.Get("Location"))
	return u
}

// requireProblem checks that r is an RFC 9457 problem with status and
// returns it.
func requireProblem(t testing.TB, r response, status int, path string) problem.Problem {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	require.Equal(t, problem.ContentType, r.header.Get("Content-Type"))
	var p problem.Problem
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&p), "body: %s", r.body)
	require.Equal(t, status, p.Status)
	require.NotEmpty(t, p.Type)
	require.NotEmpty(t, p.Title)
	require.Equal(t, path, p.Instance)
	return p
}
