package inbox_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/outbox/inbox"
)

// writeSet returns a SetEffect that writes one effects row per message of
// ids for handler h in one statement, refusing poison (and failing the
// whole statement) when it holds that id, and counting its calls.
func writeSet(h string, ids []uuid.UUID, poison uuid.UUID, calls *atomic.Int64) inbox.SetEffect {
	return func(ctx context.Context, tx pgx.Tx, indexes []int) error {
		calls.Add(1)
		rows := make([]string, len(indexes))
		for k, i := range indexes {
			rows[k] = ids[i].String()
			if ids[i] == poison {
				rows[k] = "not a uuid"
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO effects SELECT $1, id::uuid FROM unnest($2::text[]) AS r(id)`, h, rows)
		return err
	}
}

func TestProcessSet(t *testing.T) {
	t.Parallel()

	t.Run("OneStatementForTheUnseen", func(t *testing.T) {
		t.Parallel()
		b, ctx, ids := setup(t), context.Background(), newIDs(50)
		var calls atomic.Int64
		// Ten were handled before: only the other forty reach the effect.
		_, err := inbox.ProcessSet(ctx, b.pool, "h", ids[:10], writeSet("h", ids[:10], uuid.Nil, &calls))
		require.NoError(t, err)
		calls.Store(0)

		var got []uuid.UUID
		write := func(ctx context.Context, tx pgx.Tx, indexes []int) error {
			for _, i := range indexes {
				got = append(got, ids[i])
			}
			return writeSet("h", ids, uuid.Nil, &calls)(ctx, tx, indexes)
		}
		outcomes, err := inbox.ProcessSet(ctx, b.pool, "h", ids, write)
		require.NoError(t, err)
		require.Len(t, outcomes, len(ids))
		for i, o := range outcomes {
			require.Equal(t, ids[i], o.ID, "outcomes follow the batch's order")
			require.NoError(t, o.Err)
			require.Equal(t, i >= 10, o.Done, "message %d", i)
			require.Equal(t, i < 10, o.Duplicate(), "message %d", i)
		}
		require.EqualValues(t, 1, calls.Load(), "one call for the whole set")
		require.Equal(t, ids[10:], got, "the unseen, in batch order")
		require.Equal(t, len(ids), b.count(t, `SELECT count(*) FROM effects`))
		require.Equal(t, len(ids), b.count(t, `SELECT count(*) FROM inbox WHERE handler = 'h'`))
	})

	t.Run("PoisonMidSetFailsAlone", func(t *testing.T) {
		t.Parallel()
		b, ctx, ids := setup(t), context.Background(), newIDs(9)
		var calls atomic.Int64
		outcomes, err := inbox.ProcessSet(ctx, b.pool, "h", ids, writeSet("h", ids, ids[4], &calls))
		require.NoError(t, err)
		requirePoisonFailedAlone(t, b, outcomes, ids, 4)
		require.EqualValues(t, 1+len(ids), calls.Load(), "the set once, then each message alone")
	})

	t.Run("RedeliveredSetChangesNothing", func(t *testing.T) {
		t.Parallel()
		b, ctx, ids := setup(t), context.Background(), newIDs(20)
		var calls atomic.Int64
		_, err := inbox.ProcessSet(ctx, b.pool, "h", ids, writeSet("h", ids, uuid.Nil, &calls))
		require.NoError(t, err)
		// Delivered again, with a copy of the first message inside.
		again := append(append([]uuid.UUID{}, ids...), ids[0])
		outcomes, err := inbox.ProcessSet(ctx, b.pool, "h", again, writeSet("h", again, uuid.Nil, &calls))
		require.NoError(t, err)
		for i, o := range outcomes {
			require.True(t, o.Duplicate(), "message %d", i)
		}
		require.EqualValues(t, 1, calls.Load(), "nothing unseen: the effect is not called")
		require.Equal(t, len(ids), b.count(t, `SELECT count(*) FROM effects`))
	})

	t.Run("CopiesInOneSetRunOnce", func(t *testing.T) {
		t.Parallel()
		b, ctx, id := setup(t), context.Background(), uuid.New()
		ids := []uuid.UUID{id, uuid.New(), id}
		var calls atomic.Int64
		outcomes, err := inbox.ProcessSet(ctx, b.pool, "h", ids, writeSet("h", ids, uuid.Nil, &calls))
		require.NoError(t, err)
		require.True(t, outcomes[0].Done)
		require.True(t, outcomes[1].Done)
		require.True(t, outcomes[2].Duplicate())
		require.Equal(t, 2, b.count(t, `SELECT count(*) FROM effects`))
	})

	t.Run("OneMessageIsProcess", func(t *testing.T) {
		t.Parallel()
		b, ctx, ids := setup(t), context.Background(), newIDs(1)
		var calls atomic.Int64
		poisoned, err := inbox.ProcessSet(ctx, b.pool, "h", ids, writeSet("h", ids, ids[0], &calls))
		require.NoError(t, err, "a lone message's failure is its own")
		require.Error(t, poisoned[0].Err)
		outcomes, err := inbox.ProcessSet(ctx, b.pool, "h", ids, writeSet("h", ids, uuid.Nil, &calls))
		require.NoError(t, err)
		require.True(t, outcomes[0].Done)
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM effects`))
	})

	t.Run("NoHandler", func(t *testing.T) {
		t.Parallel()
		_, err := inbox.ProcessSet(context.Background(), nil, "", newIDs(2), nil)
		require.ErrorIs(t, err, inbox.ErrNoHandler)
	})
}

func TestSeenSet(t *testing.T) {
	t.Parallel()
	b, ctx, ids := setup(t), context.Background(), newIDs(4)
	require.NoError(t, inbox.Record(ctx, b.pool, "h", ids[1]))
	require.NoError(t, inbox.Record(ctx, b.pool, "h", ids[3]))
	require.NoError(t, inbox.Record(ctx, b.pool, "other", ids[0]))

	seen, err := inbox.SeenSet(ctx, b.pool, "h", append(ids, ids[1]))
	require.NoError(t, err)
	require.Equal(t, []bool{false, true, false, true, true}, seen, "per id, in order, copies included; other handlers' records do not count")

	seen, err = inbox.SeenSet(ctx, b.pool, "h", nil)
	require.NoError(t, err)
	require.Empty(t, seen)
	_, err = inbox.SeenSet(ctx, b.pool, "h", []uuid.UUID{uuid.Nil})
	require.ErrorIs(t, err, inbox.ErrNoMessageID)
	_, err = inbox.SeenSet(ctx, b.pool, "", ids)
	require.ErrorIs(t, err, inbox.ErrNoHandler)
}

// TestSeenSetStaysAnIndexLookupAsTheInboxGrows reproduces what `outboxd
// bench worker` found: a lookup by message_id = ANY($2), once its
// connection has a generic plan made while the inbox was small, read every
// row of the handler once the table had grown. The lookup must still read
// only a few of the table's blocks.
func TestSeenSetStaysAnIndexLookupAsTheInboxGrows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := setup(t).pool
	conn, err := pool.Acquire(ctx) // one connection: one statement cache
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `ALTER TABLE inbox SET (autovacuum_enabled = false)`) // no ANALYZE to invalidate plans
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `INSERT INTO inbox (handler, message_id) SELECT 'h', gen_random_uuid() FROM generate_series(1, 100)`)
	require.NoError(t, err)
	for range 10 { // PostgreSQL considers a generic plan after five runs
		_, err := inbox.SeenSet(ctx, conn, "h", newIDs(2))
		require.NoError(t, err)
	}
	_, err = conn.Exec(ctx, `INSERT INTO inbox (handler, message_id) SELECT 'h', gen_random_uuid() FROM generate_series(1, 50000)`)
	require.NoError(t, err)

	blocks := func() int64 {
		var n int64
		_, err := conn.Exec(ctx, `SELECT pg_stat_force_next_flush()`)
		require.NoError(t, err)
		require.NoError(t, conn.QueryRow(ctx, `SELECT pg_stat_clear_snapshot()`).Scan(new(any)))
		require.NoError(t, conn.QueryRow(ctx,
			`SELECT coalesce(heap_blks_hit, 0) + coalesce(heap_blks_read, 0) FROM pg_statio_user_tables WHERE relid = 'inbox'::regclass`,
		).Scan(&n))
		return n
	}
	before := blocks()
	_, err = inbox.SeenSet(ctx, conn, "h", newIDs(2))
	require.NoError(t, err)
	read := blocks() - before
	require.Less(t, read, int64(20), "heap blocks read by one lookup of 2 ids in an inbox of 50,100 rows")
}

func TestRecordSet(t *testing.T) {
	t.Parallel()
	b, ctx, ids := setup(t), context.Background(), newIDs(3)
	require.NoError(t, inbox.Record(ctx, b.pool, "h", ids[0]))
	require.NoError(t, inbox.RecordSet(ctx, b.pool, "h", append(ids, ids[1])), "one recorded before, one twice in the set")
	seen, err := inbox.SeenSet(ctx, b.pool, "h", ids)
	require.NoError(t, err)
	require.Equal(t, []bool{true, true, true}, seen)
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM inbox WHERE handler = 'h'`))

	require.NoError(t, inbox.RecordSet(ctx, b.pool, "h", nil))
	require.ErrorIs(t, inbox.RecordSet(ctx, b.pool, "h", []uuid.UUID{uuid.Nil}), inbox.ErrNoMessageID)
	require.ErrorIs(t, inbox.RecordSet(ctx, b.pool, "", ids), inbox.ErrNoHandler)
}
