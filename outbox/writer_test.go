package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
)

// A Writer without NOTIFY writes the same rows, in both forms, and wakes
// nobody; the zero Writer wakes the relays as the package's functions do.
func TestWriterWithoutNotifyWritesButWakesNobody(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	conn := listen(t, pool)
	silent := outbox.Writer{WithoutNotify: true}

	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return silent.EnqueueTx(ctx, tx, outbox.Message{Topic: "t", Key: "a"})
	})
	require.NoError(t, err)
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return silent.EnqueueTx(ctx, tx, outbox.Message{Topic: "t", Key: "a"}, outbox.Message{Topic: "t", Key: "b"})
	})
	require.NoError(t, err)
	b := &pgx.Batch{}
	require.NoError(t, silent.EnqueueBatch(b, outbox.Message{Topic: "t"}))
	require.NoError(t, pool.SendBatch(ctx, b).Close())
	require.Equal(t, 4, countOutbox(t, pool))
	require.False(t, notified(t, conn, 300*time.Millisecond), "WithoutNotify must not notify")

	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return outbox.Writer{}.EnqueueTx(ctx, tx, outbox.Message{Topic: "t"})
	})
	require.NoError(t, err)
	require.True(t, notified(t, conn, 5*time.Second), "the zero Writer notifies")
}

func countOutbox(t *testing.T, pool interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox`).Scan(&n))
	return n
}
