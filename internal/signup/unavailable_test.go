package signup

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
)

// TestSignupWhileDatabaseUnavailableIs503WithRetryAfter: a PostgreSQL that
// is down or drops the connection is the client's cue to retry, not a 500.
func TestSignupWhileDatabaseUnavailableIs503WithRetryAfter(t *testing.T) {
	t.Parallel()
	signup := func(t *testing.T, pool *pgxpool.Pool) *httptest.ResponseRecorder {
		t.Helper()
		h, err := NewHandler(pool, Config{Argon2: MinimalParams})
		require.NoError(t, err)
		body := `{"email":"ann@example.com","name":"Ann","password":"correct horse battery"}`
		rec := httptest.NewRecorder()
		h.Signup(rec, httptest.NewRequest(http.MethodPost, "/v1/signup", strings.NewReader(body)))
		return rec
	}

	t.Run("server down", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close()) // nothing listens there now
		pool, err := pgxpool.New(context.Background(), fmt.Sprintf("postgres://postgres@%s/outbox?sslmode=disable", addr))
		require.NoError(t, err)
		defer pool.Close()

		rec := signup(t, pool)
		require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
		require.Equal(t, retryAfterUnavailable, rec.Header().Get("Retry-After"))
	})

	t.Run("connection terminated", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.NewDatabase(t)
		cfg, err := pgxpool.ParseConfig(dsn)
		require.NoError(t, err)
		cfg.MaxConns = 1
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		require.NoError(t, err)
		defer pool.Close()
		var pid int
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&pid))
		// What a PostgreSQL restart does to every open connection.
		admin := pgtest.Connect(t, dsn)
		_, err = admin.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, pid)
		require.NoError(t, err)

		rec := signup(t, pool)
		require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
		require.Equal(t, retryAfterUnavailable, rec.Header().Get("Retry-After"))
	})
}
