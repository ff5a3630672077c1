package inbox_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox/inbox"
)

type testBundle struct {
	pool *pgxpool.Pool
}

// setup returns a fresh database with an effects table that handlers in the
// tests write to.
func setup(t *testing.T) *testBundle {
	t.Helper()
	pool := pgtest.NewPool(t)
	_, err := pool.Exec(context.Background(), `CREATE TABLE effects (handler text NOT NULL, message_id uuid NOT NULL)`)
	require.NoError(t, err)
	return &testBundle{pool: pool}
}

// writeEffect returns an fn for Process that inserts one effects row.
func writeEffect(handler string, id uuid.UUID) func(context.Context, pgx.Tx) error {
	return func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO effects VALUES ($1, $2)`, handler, id)
		return err
	}
}

func (b *testBundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func TestProcess(t *testing.T) {
	t.Parallel()

	t.Run("RedeliveryHasNoSecondEffect", func(t *testing.T) {
		t.Parallel()
		b, ctx, id := setup(t), context.Background(), uuid.New()
		for i := range 3 {
			done, err := inbox.Process(ctx, b.pool, "h", id, writeEffect("h", id))
			require.NoError(t, err)
			require.Equal(t, i == 0, done, "only the first delivery does the work (delivery %d)", i+1)
		}
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM effects`))
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM inbox WHERE handler = 'h' AND message_id = $1`, id))
	})

	t.Run("FailedEffectRecordsNothingAndRunsAgain", func(t *testing.T) {
		t.Parallel()
		b, ctx, id := setup(t), context.Background(), uuid.New()
		boom := errors.New("boom")
		done, err := inbox.Process(ctx, b.pool, "h", id, func(ctx context.Context, tx pgx.Tx) error {
			if err := writeEffect("h", id)(ctx, tx); err != nil {
				return err
			}
			return boom // after the effect was written: it must roll back too
		})
		require.ErrorIs(t, err, boom)
		require.False(t, done)
		require.Zero(t, b.count(t, `SELECT count(*) FROM effects`))
		require.Zero(t, b.count(t, `SELECT count(*) FROM inbox`))

		done, err = inbox.Process(ctx, b.pool, "h", id, writeEffect("h", id))
		require.NoError(t, err)
		require.True(t, done, "a failed attempt must not count as processed")
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM effects`))
	})

	t.Run("HandlersAreIndependent", func(t *testing.T) {
		t.Parallel()
		b, ctx, id := setup(t), context.Background(), uuid.New()
		for _, h := range []string{"email", "profile", "audit"} {
			done, err := inbox.Process(ctx, b.pool, h, id, writeEffect(h, id))
			require.NoError(t, err)
			require.True(t, done, h)
		}
		require.Equal(t, 3, b.count(t, `SELECT count(DISTINCT handler) FROM effects`))
	})

	t.Run("ConcurrentDeliveriesHaveOneEffect", func(t *testing.T) {
		t.Parallel()
		b, ctx, id := setup(t), context.Background(), uuid.New()
		const deliveries = 8
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			dones int
			errs  []error
		)
		start := make(chan struct{})
		for range deliveries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				done, err := inbox.Process(ctx, b.pool, "h", id, writeEffect("h", id))
				mu.Lock()
				defer mu.Unlock()
				if done {
					dones++
				}
				if err != nil {
					errs = append(errs, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		require.Empty(t, errs)
		require.Equal(t, 1, dones)
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM effects`))
	})

	t.Run("WaitsForInFlightDeliveryAndTakesOverAfterRollback", func(t *testing.T) {
		t.Parallel()
		b, ctx, id := setup(t), context.Background(), uuid.New()

		first, err := b.pool.Begin(ctx)
		require.NoError(t, err)
		done, err := inbox.ProcessTx(ctx, first, "h", id, writeEffect("h", id))
		require.NoError(t, err)
		require.True(t, done)

		type result struct {
			done bool
			err  error
		}
		second := make(chan result, 1)
		go func() {
			done, err := inbox.Process(ctx, b.pool, "h", id, writeEffect("h", id))
			second <- result{done, err}
		}()
		// The second delivery must wait on the first one's row lock, not
		// decide before the first transaction ends.
		require.Eventually(t, func() bool {
			return b.count(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 1
		}, 10*time.Second, 10*time.Millisecond)
		select {
		case r := <-second:
			t.Fatalf("second delivery finished while the first was in flight: %+v", r)
		default:
		}

		require.NoError(t, first.Rollback(ctx))
		select {
		case r := <-second:
			require.NoError(t, r.err)
			require.True(t, r.done, "after the first delivery rolled back, the second does the work")
		case <-time.After(10 * time.Second):
			t.Fatal("second delivery still blocked after the first rolled back")
		}
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM effects`))
	})

	t.Run("RejectsEmptyHandlerAndZeroID", func(t *testing.T) {
		t.Parallel()
		b, ctx := setup(t), context.Background()
		_, err := inbox.Process(ctx, b.pool, "", uuid.New(), writeEffect("", uuid.Nil))
		require.ErrorIs(t, err, inbox.ErrNoHandler)
		_, err = inbox.Process(ctx, b.pool, "h", uuid.Nil, writeEffect("h", uuid.Nil))
		require.ErrorIs(t, err, inbox.ErrNoMessageID)
		_, err = inbox.Seen(ctx, b.pool, "", uuid.New())
		require.ErrorIs(t, err, inbox.ErrNoHandler)
		require.ErrorIs(t, inbox.Record(ctx, b.pool, "h", uuid.Nil), inbox.ErrNoMessageID)
		require.Zero(t, b.count(t, `SELECT count(*) FROM effects`))
	})
}

func TestProcessTxJoinsCallerTransaction(t *testing.T) {
	t.Parallel()
	b, ctx, id := setup(t), context.Background(), uuid.New()

	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	done, err := inbox.ProcessTx(ctx, tx, "h", id, writeEffect("h", id))
	require.NoError(t, err)
	require.True(t, done)
	require.NoError(t, tx.Rollback(ctx))
	require.Zero(t, b.count(t, `SELECT count(*) FROM inbox`), "the inbox row rolls back with the caller's transaction")

	tx, err = b.pool.Begin(ctx)
	require.NoError(t, err)
	done, err = inbox.ProcessTx(ctx, tx, "h", id, writeEffect("h", id))
	require.NoError(t, err)
	require.True(t, done)
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM effects`))
}

func TestSeenAndRecord(t *testing.T) {
	t.Parallel()
	b, ctx, id := setup(t), context.Background(), uuid.New()

	seen, err := inbox.Seen(ctx, b.pool, "email", id)
	require.NoError(t, err)
	require.False(t, seen)

	require.NoError(t, inbox.Record(ctx, b.pool, "email", id))
	require.NoError(t, inbox.Record(ctx, b.pool, "email", id), "recording twice is not an error")

	seen, err = inbox.Seen(ctx, b.pool, "email", id)
	require.NoError(t, err)
	require.True(t, seen)
	seen, err = inbox.Seen(ctx, b.pool, "other", id)
	require.NoError(t, err)
	require.False(t, seen, "a record belongs to one handler")

	done, err := inbox.Process(ctx, b.pool, "email", id, writeEffect("email", id))
	require.NoError(t, err)
	require.False(t, done, "Record and Process share the inbox")
}

func TestPrune(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t), context.Background()
	old, recent := uuid.New(), uuid.New()
	require.NoError(t, inbox.Record(ctx, b.pool, "h", old))
	require.NoError(t, inbox.Record(ctx, b.pool, "h", recent))
	_, err := b.pool.Exec(ctx, `UPDATE inbox SET processed_at = now() - interval '8 days' WHERE message_id = $1`, old)
	require.NoError(t, err)

	n, err := inbox.Prune(ctx, b.pool, 7*24*time.Hour)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	_, err = inbox.Prune(ctx, b.pool, time.Minute)
	require.ErrorContains(t, err, "below the minimum", "a fresh row is never pruned")
	_, err = b.pool.Exec(ctx, `SELECT prune_inbox('1 minute')`)
	require.ErrorContains(t, err, "at least 1 hour", "the database refuses too")
	seen, err := inbox.Seen(ctx, b.pool, "h", old)
	require.NoError(t, err)
	require.False(t, seen)
	seen, err = inbox.Seen(ctx, b.pool, "h", recent)
	require.NoError(t, err)
	require.True(t, seen)
}
