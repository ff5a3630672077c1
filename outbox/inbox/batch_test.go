package inbox_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/outbox/inbox"
)

// batchOf returns a batch that writes one effects row per id for handler h.
func batchOf(h string, ids ...uuid.UUID) []inbox.Message {
	batch := make([]inbox.Message, len(ids))
	for i, id := range ids {
		batch[i] = inbox.Message{ID: id, Effect: writeEffect(h, id)}
	}
	return batch
}

func newIDs(n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	return ids
}

func TestProcessBatch(t *testing.T) {
	t.Parallel()

	t.Run("AppliesEveryMessageOnce", func(t *testing.T) {
		t.Parallel()
		b, ctx, ids := setup(t), context.Background(), newIDs(50)
		outcomes, err := inbox.ProcessBatch(ctx, b.pool, "h", batchOf("h", ids...))
		require.NoError(t, err)
		require.Len(t, outcomes, len(ids))
		for i, o := range outcomes {
			require.Equal(t, ids[i], o.ID, "outcomes follow the batch's order")
			require.True(t, o.Done)
			require.NoError(t, o.Err)
		}
		require.Equal(t, len(ids), b.count(t, `SELECT count(*) FROM effects`))
		require.Equal(t, len(ids), b.count(t, `SELECT count(*) FROM inbox WHERE handler = 'h'`))
	})

	t.Run("PipelinedPoisonMidBatchFailsAlone", func(t *testing.T) {
		t.Parallel()
		b, ctx, ids := setup(t), context.Background(), newIDs(9)
		batch := batchOf("h", ids...)
		for i := range batch {
			batch[i].Pipelined = true
		}
		// The server refuses the statement; pipelined, Exec cannot say so,
		// and the batch finds the message it belongs to by running the
		// effects again one by one.
		batch[4].Effect = func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO effects VALUES ('h', $1::text::uuid)`, "not a uuid")
			return err
		}
		outcomes, err := inbox.ProcessBatch(ctx, b.pool, "h", batch)
		require.NoError(t, err)
		requirePoisonFailedAlone(t, b, outcomes, ids, 4)
	})

	t.Run("PipelinedStatementsRunInOrder", func(t *testing.T) {
		t.Parallel()
		b, ctx, ids := setup(t), context.Background(), newIDs(5)
		batch := batchOf("h", ids...)
		seen := make([]int, len(ids))
		for i := range batch {
			batch[i].Pipelined = true
			write := batch[i].Effect
			batch[i].Effect = func(ctx context.Context, tx pgx.Tx) error {
				if err := write(ctx, tx); err != nil {
					return err
				}
				// A query sends what was queued before it.
				return tx.QueryRow(ctx, `SELECT count(*) FROM effects`).Scan(&seen[i])
			}
		}
		outcomes, err := inbox.ProcessBatch(ctx, b.pool, "h", batch)
		require.NoError(t, err)
		for i, o := range outcomes {
			require.True(t, o.Done, "message %d", i)
		}
		require.Equal(t, []int{1, 2, 3, 4, 5}, seen, "each effect sees its own row and those before it")
	})

	t.Run("PoisonMidBatchFailsAlone", func(t *testing.T) {
		t.Parallel()
		b, ctx, ids := setup(t), context.Background(), newIDs(9)
		batch := batchOf("h", ids...)
		poison := errors.New("poison")
		batch[4].Effect = func(ctx context.Context, tx pgx.Tx) error {
			if err := writeEffect("h", ids[4])(ctx, tx); err != nil {
				return err
			}
			// A failed statement aborts the transaction: only the savepoint
			// lets the others go on.
			_, err := tx.Exec(ctx, `SELECT 1/0`)
			return errors.Join(poison, err)
		}
		outcomes, err := inbox.ProcessBatch(ctx, b.pool, "h", batch)
		require.NoError(t, err)
		for i, o := range outcomes {
			if i == 4 {
				require.ErrorIs(t, o.Err, poison)
				require.False(t, o.Done)
				require.False(t, o.Duplicate())
				continue
			}
			require.True(t, o.Done, "message %d", i)
			require.NoError(t, o.Err, "message %d", i)
		}
		require.Equal(t, 8, b.count(t, `SELECT count(*) FROM effects`))
		require.Zero(t, b.count(t, `SELECT count(*) FROM effects WHERE message_id = $1`, ids[4]), "the poison message's effect rolled back")
		require.Zero(t, b.count(t, `SELECT count(*) FROM inbox WHERE message_id = $1`, ids[4]), "the poison message is not recorded")

		// Redelivered alone and healed, it is applied; the rest stay once.
		outcomes, err = inbox.ProcessBatch(ctx, b.pool, "h", batchOf("h", ids...))
		require.NoError(t, err)
		for i, o := range outcomes {
			require.Equal(t, i == 4, o.Done, "message %d", i)
			require.Equal(t, i != 4, o.Duplicate(), "message %d", i)
		}
		require.Equal(t, 9, b.count(t, `SELECT count(*) FROM effects`))
		require.Equal(t, 9, b.count(t, `SELECT count(DISTINCT message_id) FROM effects`))
	})

	t.Run("SameBatchTwiceChangesNothing", func(t *testing.T) {
		t.Parallel()
		b, ctx, ids := setup(t), context.Background(), newIDs(20)
		_, err := inbox.ProcessBatch(ctx, b.pool, "h", batchOf("h", ids...))
		require.NoError(t, err)
		called := 0
		batch := batchOf("h", ids...)
		for i := range batch {
			batch[i].Effect = func(context.Context, pgx.Tx) error { called++; return nil }
		}
		outcomes, err := inbox.ProcessBatch(ctx, b.pool, "h", batch)
		require.NoError(t, err)
		for _, o := range outcomes {
			require.True(t, o.Duplicate())
		}
		require.Zero(t, called, "no effect runs for a redelivered batch")
		require.Equal(t, 20, b.count(t, `SELECT count(*) FROM effects`))
		require.Equal(t, 20, b.count(t, `SELECT count(*) FROM inbox`))
	})

	t.Run("RepeatedIDInOneBatchRunsOnce", func(t *testing.T) {
		t.Parallel()
		b, ctx, id := setup(t), context.Background(), uuid.New()
		outcomes, err := inbox.ProcessBatch(ctx, b.pool, "h", batchOf("h", id, id, id))
		require.NoError(t, err)
		require.True(t, outcomes[0].Done)
		require.True(t, outcomes[1].Duplicate())
		require.True(t, outcomes[2].Duplicate())
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM effects`))
	})

	t.Run("ConcurrentOverlappingBatchesApplyEachOnce", func(t *testing.T) {
		t.Parallel()
		b, ctx, ids := setup(t), context.Background(), newIDs(60)
		const workers = 6
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			dones = map[uuid.UUID]int{}
			errs  []error
		)
		start := make(chan struct{})
		for w := range workers {
			// Each batch overlaps its neighbours by half, in reversed order
			// for odd workers so that lock order would matter.
			part := append([]uuid.UUID(nil), ids[w*10%len(ids):]...)
			part = append(part, ids[:w*10%len(ids)]...)
			part = part[:30]
			if w%2 == 1 {
				for i, j := 0, len(part)-1; i < j; i, j = i+1, j-1 {
					part[i], part[j] = part[j], part[i]
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				outcomes, err := inbox.ProcessBatch(ctx, b.pool, "h", batchOf("h", part...))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				for _, o := range outcomes {
					if o.Err != nil {
						errs = append(errs, o.Err)
					}
					if o.Done {
						dones[o.ID]++
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		require.Empty(t, errs)
		for id, n := range dones {
			require.Equal(t, 1, n, "message %s done by %d batches", id, n)
		}
		require.Equal(t, b.count(t, `SELECT count(DISTINCT message_id) FROM effects`), b.count(t, `SELECT count(*) FROM effects`))
		require.Equal(t, len(dones), b.count(t, `SELECT count(*) FROM effects`))
	})

	t.Run("BatchOfOneFailsInItsOutcome", func(t *testing.T) {
		t.Parallel()
		b, ctx, id := setup(t), context.Background(), uuid.New()
		boom := errors.New("boom")
		outcomes, err := inbox.ProcessBatch(ctx, b.pool, "h", []inbox.Message{{ID: id, Effect: func(ctx context.Context, tx pgx.Tx) error {
			if err := writeEffect("h", id)(ctx, tx); err != nil {
				return err
			}
			return boom
		}}})
		require.NoError(t, err)
		require.ErrorIs(t, outcomes[0].Err, boom)
		require.Zero(t, b.count(t, `SELECT count(*) FROM effects`))
		require.Zero(t, b.count(t, `SELECT count(*) FROM inbox`))
		outcomes, err = inbox.ProcessBatch(ctx, b.pool, "h", batchOf("h", id))
		require.NoError(t, err)
		require.True(t, outcomes[0].Done)
		outcomes, err = inbox.ProcessBatch(ctx, b.pool, "h", batchOf("h", id))
		require.NoError(t, err)
		require.True(t, outcomes[0].Duplicate())
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM effects`))
	})

	t.Run("RejectsEmptyHandlerAndZeroID", func(t *testing.T) {
		t.Parallel()
		b, ctx, id := setup(t), context.Background(), uuid.New()
		_, err := inbox.ProcessBatch(ctx, b.pool, "", batchOf("", id))
		require.ErrorIs(t, err, inbox.ErrNoHandler)
		outcomes, err := inbox.ProcessBatch(ctx, b.pool, "h", batchOf("h", uuid.Nil, id))
		require.NoError(t, err)
		require.ErrorIs(t, outcomes[0].Err, inbox.ErrNoMessageID)
		require.True(t, outcomes[1].Done, "a bad id does not fail the others")
	})

	t.Run("TxRollsBackWithCaller", func(t *testing.T) {
		t.Parallel()
		b, ctx, ids := setup(t), context.Background(), newIDs(3)
		tx, err := b.pool.Begin(ctx)
		require.NoError(t, err)
		outcomes, err := inbox.ProcessBatchTx(ctx, tx, "h", batchOf("h", ids...))
		require.NoError(t, err)
		require.True(t, outcomes[2].Done)
		require.NoError(t, tx.Rollback(ctx))
		require.Zero(t, b.count(t, `SELECT count(*) FROM inbox`))
		require.Zero(t, b.count(t, `SELECT count(*) FROM effects`))
	})
}

// requirePoisonFailedAlone checks the outcome of a batch of ids in which
// the message at poison was refused by the server (an invalid uuid): it
// alone failed and is not recorded; every other message is done, its
// effect and inbox row written once.
func requirePoisonFailedAlone(t *testing.T, b *testBundle, outcomes []inbox.Outcome, ids []uuid.UUID, poison int) {
	t.Helper()
	for i, o := range outcomes {
		if i == poison {
			require.ErrorContains(t, o.Err, "invalid input syntax for type uuid")
			require.False(t, o.Done)
			continue
		}
		require.True(t, o.Done, "message %d", i)
		require.NoError(t, o.Err, "message %d", i)
	}
	others := len(ids) - 1
	require.Equal(t, others, b.count(t, `SELECT count(*) FROM effects`), "the others' effects, once each")
	require.Zero(t, b.count(t, `SELECT count(*) FROM inbox WHERE message_id = $1`, ids[poison]), "the poison message is not recorded")
	require.Equal(t, others, b.count(t, `SELECT count(*) FROM inbox`))
}
