package signup

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
)

// TestPruneIdempotencyKeys deletes only keys older than the TTL, and
// neither the Go side nor the database function lets a TTL under an hour
// delete a key a client may still retry with.
func TestPruneIdempotencyKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	for _, k := range []struct {
		key string
		age string
	}{{"old", "25 hours"}, {"recent", "2 hours"}, {"fresh", "0"}} {
		_, err := pool.Exec(ctx, `INSERT INTO idempotency_keys (key, request_hash, status, response_body, created_at)
			VALUES ($1, '\x00', 201, '{}', now() - $2::interval)`, k.key, k.age)
		require.NoError(t, err)
	}

	n, err := PruneIdempotencyKeys(ctx, pool, 24*time.Hour)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	stored, err := lookupResponse(ctx, pool, "old")
	require.NoError(t, err)
	require.Nil(t, stored, "the expired key is gone")
	stored, err = lookupResponse(ctx, pool, "recent")
	require.NoError(t, err)
	require.NotNil(t, stored, "a key within its TTL stays")

	_, err = PruneIdempotencyKeys(ctx, pool, time.Minute)
	require.ErrorContains(t, err, "below the minimum")
	_, err = pool.Exec(ctx, `SELECT prune_idempotency_keys('1 minute')`)
	require.ErrorContains(t, err, "at least 1 hour", "the database refuses too")
	stored, err = lookupResponse(ctx, pool, "fresh")
	require.NoError(t, err)
	require.NotNil(t, stored)
}
