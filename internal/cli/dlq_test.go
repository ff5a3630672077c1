package cli_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
)

func TestDLQPurgeAllRelayDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	pool := pgtest.Connect(t, dsn)
	_, err := pool.Exec(ctx, `
INSERT INTO outbox_dead_letters (id, message_id, topic, key, payload, metadata, created_at, xid, attempts, next_attempt_at, last_error)
SELECT i, gen_random_uuid(), 't', 'k', '\x00', '{}', now(), pg_current_xact_id(), 5, now(), 'rejected' FROM generate_series(1, 3) AS i`)
	require.NoError(t, err)

	code, out, errOut := run(ctx, "dlq", "purge", "--relay", "--all", "--database-url", dsn)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "purged 3")
	var left int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM outbox_dead_letters`).Scan(&left))
	require.Zero(t, left)
}
