package signup

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
)

// roundTrips counts what a pool sends: single statements (BEGIN and COMMIT
// included) and batches, each one round trip.
type roundTrips struct{ queries, batches atomic.Int64 }

func (c *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.queries.Add(1)
	return ctx
}

func (c *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.batches.Add(1)
	return ctx
}

func (c *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (c *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// TestSignupIsOneRoundTrip: without an Idempotency-Key, the user, its
// user.created message and the commit travel as one batch; with a key, the
// claim comes first, in a transaction.
func TestSignupIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	require.NoError(t, err)
	trips := &roundTrips{}
	cfg.ConnConfig.Tracer = trips
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	defer pool.Close()
	h, err := NewHandler(pool, Config{Argon2: MinimalParams})
	require.NoError(t, err)
	signup := func(email, key string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/signup",
			strings.NewReader(`{"email":"`+email+`","name":"Ann","password":"correct horse battery"}`))
		if key != "" {
			req.Header.Set(IdempotencyKeyHeader, key)
		}
		rec := httptest.NewRecorder()
		h.Signup(rec, req)
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	}

	signup("ann@example.com", "")
	require.Zero(t, trips.queries.Load(), "no BEGIN, no COMMIT, no single statement")
	require.Equal(t, int64(1), trips.batches.Load())

	trips.queries.Store(0)
	trips.batches.Store(0)
	signup("bo@example.com", "key-1")
	// Look up the key (so a retry skips hashing), BEGIN, claim it, then
	// the batch, then COMMIT.
	require.Equal(t, int64(1), trips.batches.Load())
	require.Equal(t, int64(4), trips.queries.Load())
}
