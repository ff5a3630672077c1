package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
)

// queryCounter counts the statements a pool sends.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func TestEnqueueThousandMessagesInOneRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	require.NoError(t, err)
	counter := &queryCounter{}
	cfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	msgs := make([]outbox.Message, 1000)
	for i := range msgs {
		msgs[i] = outbox.Message{
			Topic:    "thing.happened",
			Key:      fmt.Sprintf("k%d", i%7),
			Payload:  []byte(fmt.Sprintf(`{"n":%d}`, i)),
			Metadata: map[string]string{"n": fmt.Sprint(i)},
		}
	}
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	before := counter.n.Load()
	require.NoError(t, outbox.EnqueueTx(ctx, tx, msgs...))
	require.Equal(t, int64(1), counter.n.Load()-before, "Enqueue must send one statement")
	require.NoError(t, tx.Commit(ctx))

	rows, err := pool.Query(ctx, `SELECT key, payload, metadata->>'n' FROM outbox ORDER BY id`)
	require.NoError(t, err)
	i := 0
	for rows.Next() {
		var key, n string
		var payload []byte
		require.NoError(t, rows.Scan(&key, &payload, &n))
		require.Equal(t, fmt.Sprintf("k%d", i%7), key)
		require.Equal(t, fmt.Sprintf(`{"n":%d}`, i), string(payload), "rows keep the order given")
		require.Equal(t, fmt.Sprint(i), n)
		i++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, 1000, i)
}

// TestEnqueueKeepsIDPayloadAndMetadata covers both statements: one message
// (VALUES) and several (unnest).
func TestEnqueueKeepsIDPayloadAndMetadata(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d messages", n), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool := pgtest.NewPool(t)
			id := uuid.New()
			payload := []byte{0, 1, 2, 0xff} // not JSON: bytes travel as they are
			msgs := []outbox.Message{{ID: id, Topic: "a", Key: "k", Payload: payload, Metadata: map[string]string{"x": "y"}}}
			for len(msgs) < n {
				msgs = append(msgs, outbox.Message{Topic: "b"})
			}

			tx, err := pool.Begin(ctx)
			require.NoError(t, err)
			require.NoError(t, outbox.EnqueueTx(ctx, tx, msgs...))
			require.NoError(t, tx.Commit(ctx))
			requireStored(t, pool, id, payload, map[string]string{"x": "y"})
			requireGeneratedIDs(t, pool, n-1)
		})
	}
}

// requireStored checks the committed row of message id.
func requireStored(t *testing.T, pool *pgxpool.Pool, id uuid.UUID, payload []byte, metadata map[string]string) {
	t.Helper()
	var gotPayload []byte
	var md map[string]string
	var xidOK bool
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT payload, metadata, pg_visible_in_snapshot(xid, pg_current_snapshot()) FROM outbox WHERE message_id = $1`, id,
	).Scan(&gotPayload, &md, &xidOK))
	require.Equal(t, payload, gotPayload)
	require.Equal(t, metadata, md)
	require.True(t, xidOK, "the row records the xid of the transaction that wrote it, which has committed")
}

// requireGeneratedIDs checks that the n messages of topic "b", enqueued
// without an id, got distinct UUIDv7s.
func requireGeneratedIDs(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT message_id FROM outbox WHERE topic = 'b'`)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	require.NoError(t, err)
	require.Len(t, ids, n)
	seen := map[uuid.UUID]bool{}
	for _, id := range ids {
		require.Equal(t, uuid.Version(7), id.Version())
		require.False(t, seen[id], "ids are distinct")
		seen[id] = true
	}
}

func TestEnqueueRejectsMessageWithoutTopic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	err = outbox.EnqueueTx(ctx, tx, outbox.Message{Topic: "ok"}, outbox.Message{})
	require.ErrorIs(t, err, outbox.ErrNoTopic)
	require.ErrorContains(t, err, "message 1")
}

func TestEnqueueNotifiesAtCommitOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)

	listener, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer listener.Release()
	_, err = listener.Exec(ctx, "LISTEN "+outbox.NotifyChannel)
	require.NoError(t, err)

	// Rolled back: no row and no notification.
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, outbox.EnqueueTx(ctx, tx, outbox.Message{Topic: "t"}))
	require.NoError(t, tx.Rollback(ctx))
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&n))
	require.Zero(t, n)
	waitCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = listener.Conn().WaitForNotification(waitCtx)
	cancel()
	require.True(t, errors.Is(err, context.DeadlineExceeded), "a rolled-back enqueue must not notify, got %v", err)

	// Committed: one notification, delivered once the transaction commits.
	tx, err = pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, outbox.EnqueueTx(ctx, tx, outbox.Message{Topic: "t"}, outbox.Message{Topic: "t"}))
	require.NoError(t, tx.Commit(ctx))
	waitCtx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	note, err := listener.Conn().WaitForNotification(waitCtx)
	require.NoError(t, err)
	require.Equal(t, outbox.NotifyChannel, note.Channel)
}

func TestEnqueueOfNothingIsANoOp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, outbox.EnqueueTx(ctx, tx))
	require.NoError(t, tx.Commit(ctx))
}
