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
