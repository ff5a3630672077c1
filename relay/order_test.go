package relay_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// A row that committed first but has a higher id than a row still in flight
// waits for it: the relay publishes nothing of the key until the older
// transaction commits, then both in id order.
func TestRelayWaitsForOlderTransactionsOfTheKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := newSink(t)
	start(t, newRelay(t, pool, s, relay.Config{PollInterval: 20 * time.Millisecond}))

	begin := func(m outbox.Message) pgx.Tx {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		t.Cleanup(func() { _ = tx.Rollback(ctx) })
		require.NoError(t, outbox.EnqueueTx(ctx, tx, m))
		return tx
	}

	// C writes first, so its xid is below A's, and commits last: once its
	// canary is out, the relay has claimed after B committed.
	canary := msgSeq("canary", 1)
	c := begin(canary)
	first, second := msgSeq("k", 1), msgSeq("k", 2)
	a := begin(first)  // lower id, stays open
	b := begin(second) // higher id, commits first
	require.NoError(t, b.Commit(ctx))
	require.NoError(t, c.Commit(ctx))

	require.Eventually(t, func() bool { return s.has(canary.ID) }, 10*time.Second, 5*time.Millisecond)
	require.False(t, s.has(second.ID), "a row must wait for the older transaction still in flight")
	require.False(t, s.has(first.ID))

	require.NoError(t, a.Commit(ctx))
	s.waitDistinct(t, 3, 10*time.Second)
	var order []string
	for _, d := range s.all() {
		if d.key == "k" {
			order = append(order, d.id)
		}
	}
	require.Equal(t, []string{first.ID.String(), second.ID.String()}, order)
}

// Many writers interleave transactions over many keys, some held open while
// later ones commit; the relay publishes each key in order while keys run in
// parallel lanes.
func TestRelayKeepsOrderPerKeyUnderConcurrentWriters(t *testing.T) {
	t.Parallel()
	forEachCapture(t, func(t *testing.T, capture relay.Capture) {
		ctx := context.Background()
		pool := pgtest.NewPool(t)
		s := newSink(t)
		start(t, newRelay(t, pool, s, relay.Config{Capture: capture, BatchSize: 50, Concurrency: 4, PollInterval: 20 * time.Millisecond}))

		const writers, keysPerWriter, txPerWriter = 6, 5, 60
		var w keyedWriter
		var wg sync.WaitGroup
		for wr := range writers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(wr), 1))
				for range txPerWriter {
					// One writer owns its keys, so its commit order is each key's order.
					msgs := make([]outbox.Message, 1+rng.IntN(4))
					for i := range msgs {
						msgs[i] = w.next(fmt.Sprintf("w%d-k%d", wr, rng.IntN(keysPerWriter)))
					}
					err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						if err := outbox.EnqueueTx(ctx, tx, msgs...); err != nil {
							return err
						}
						if rng.IntN(10) == 0 {
							// Hold the transaction open so other writers commit later ids first.
							time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
						}
						return nil
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		total := len(w.written())
		s.waitDistinct(t, total, 60*time.Second)
		requireKeyOrder(t, s.all())
		require.Len(t, s.all(), total)
	})
}

// xids are cluster-wide, but a transaction in another database cannot write
// this outbox: it must not hold the relay back.
func TestRelayIgnoresTransactionsOfOtherDatabases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	other := pgtest.NewPool(t)
	s := newSink(t)
	start(t, newRelay(t, pool, s, relay.Config{}))

	elsewhere, err := other.Begin(ctx)
	require.NoError(t, err)
	defer elsewhere.Rollback(ctx) //nolint:errcheck
	_, err = elsewhere.Exec(ctx, `SELECT pg_current_xact_id()`)
	require.NoError(t, err)

	m := msgSeq("k", 1)
	enqueue(t, pool, m)
	require.Eventually(t, func() bool { return s.has(m.ID) }, 5*time.Second, time.Millisecond)
}

// A transaction that got its xid before others can commit its row after
// theirs were published, below their ids: the claim floor, the id a leader
// starts its claims from, must not rise above it while it is in flight.
// The relay starts with the later rows committed and the older transaction
// open, so its first floor read sees them as the smallest pending ids; the
// older row must go out promptly once committed, not at the floor's sweep
// (every 10 s), which is all that would find it if the floor rose at once.
func TestRelayClaimFloorWaitsForTransactionsInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	pool := pgtest.Connect(t, dsn)
	s := newSink(t)
	// begin opens a transaction on a connection of its own, beside the
	// relay's pool.
	begin := func() pgx.Tx {
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(ctx) })
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		return tx
	}

	const early = 5
	var txs []pgx.Tx
	for range early {
		tx := begin()
		_, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`) // an xid below the older row's
		require.NoError(t, err)
		txs = append(txs, tx)
	}
	older := begin()
	late := msgSeq("late", 1)
	require.NoError(t, outbox.EnqueueTx(ctx, older, late)) // the lowest id, open
	var ids []string
	for i, tx := range txs {
		msgs := make([]outbox.Message, 200)
		for j := range msgs {
			msgs[j] = msgSeq(fmt.Sprintf("early-%d", i), j+1)
			ids = append(ids, msgs[j].ID.String())
		}
		require.NoError(t, outbox.EnqueueTx(ctx, tx, msgs...))
		require.NoError(t, tx.Commit(ctx))
	}

	start(t, newRelay(t, pool, s, relay.Config{PollInterval: 20 * time.Millisecond}))
	s.waitDistinct(t, len(ids), 10*time.Second)
	require.False(t, s.has(late.ID))

	require.NoError(t, older.Commit(ctx))
	require.Eventually(t, func() bool { return s.has(late.ID) }, 5*time.Second, 5*time.Millisecond,
		"a row committed below the rows already published goes out promptly")
	requireKeyOrder(t, s.all())
}
