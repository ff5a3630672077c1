package outbox_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
)

// listen returns a connection listening on outbox.NotifyChannel.
func listen(t *testing.T, pool *pgxpool.Pool) *pgxpool.Conn {
	t.Helper()
	conn, err := pool.Acquire(context.Background())
	require.NoError(t, err)
	t.Cleanup(conn.Release)
	_, err = conn.Exec(context.Background(), "LISTEN "+outbox.NotifyChannel)
	require.NoError(t, err)
	return conn
}

// notified tells whether conn receives a notification within wait.
func notified(t *testing.T, conn *pgxpool.Conn, wait time.Duration) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := conn.Conn().WaitForNotification(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	require.NoError(t, err)
	return true
}

// A batch sent outside a transaction is one implicit transaction: the
// caller's statement and the message commit together, and the relays are
// woken.
func TestEnqueueBatchCommitsWithTheCallersStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	listener := listen(t, pool)
	id, userID := uuid.New(), uuid.New()

	b := &pgx.Batch{}
	b.Queue(`INSERT INTO users (id, email, name, password_hash) VALUES ($1, 'a@example.com', 'A', 'x')`, userID)
	require.NoError(t, outbox.EnqueueBatch(b, outbox.Message{ID: id, Topic: "a", Payload: []byte("p"), Metadata: map[string]string{"x": "y"}}))
	require.NoError(t, pool.SendBatch(ctx, b).Close())

	requireStored(t, pool, id, []byte("p"), map[string]string{"x": "y"})
	var users int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE id = $1`, userID).Scan(&users))
	require.Equal(t, 1, users)
	require.True(t, notified(t, listener, 5*time.Second), "the commit wakes relays")
}

// When a statement of the batch fails, before or after the message, the
// implicit transaction rolls back: no row, no notification.
func TestEnqueueBatchRollsBackWithTheBatch(t *testing.T) {
	t.Parallel()
	for _, failFirst := range []bool{true, false} {
		name := map[bool]string{true: "failure before", false: "failure after"}[failFirst]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool := pgtest.NewPool(t)
			listener := listen(t, pool)

			b := &pgx.Batch{}
			failing := `SELECT 1/0`
			if failFirst {
				b.Queue(failing)
			}
			require.NoError(t, outbox.EnqueueBatch(b, outbox.Message{Topic: "a"}, outbox.Message{Topic: "a"}))
			if !failFirst {
				b.Queue(failing)
			}
			err := pool.SendBatch(ctx, b).Close()
			require.ErrorContains(t, err, "division by zero")

			var n int
			require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n))
			require.Zero(t, n, "the message rolled back with the batch")
			require.False(t, notified(t, listener, 300*time.Millisecond), "a rolled-back batch must not notify")
		})
	}
}

// Inside a transaction, the batch's message waits for the transaction.
func TestEnqueueBatchInATransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	id := uuid.New()

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	b := &pgx.Batch{}
	require.NoError(t, outbox.EnqueueBatch(b, outbox.Message{ID: id, Topic: "a"}))
	require.NoError(t, tx.SendBatch(ctx, b).Close())
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n))
	require.Zero(t, n, "invisible before commit")
	require.NoError(t, tx.Commit(ctx))
	requireStored(t, pool, id, []byte{}, map[string]string{})
}

func TestEnqueueBatchRejectsMessageWithoutTopic(t *testing.T) {
	t.Parallel()
	b := &pgx.Batch{}
	err := outbox.EnqueueBatch(b, outbox.Message{Topic: "ok"}, outbox.Message{})
	require.ErrorIs(t, err, outbox.ErrNoTopic)
	require.Zero(t, b.Len(), "nothing queued")
	require.NoError(t, outbox.EnqueueBatch(b))
	require.Zero(t, b.Len(), "no messages, no statement")
}
