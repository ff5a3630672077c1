package relay_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

func TestRelayPublishesEveryCommittedRowExactlyOnce(t *testing.T) {
	t.Parallel()
	forEachCapture(t, func(t *testing.T, capture relay.Capture) {
		pool := pgtest.NewPool(t)
		s := newSink(t)

		const total = 10_000
		var w keyedWriter
		for b := 0; b < total/1000; b++ {
			msgs := make([]outbox.Message, 1000)
			for i := range msgs {
				msgs[i] = w.next(fmt.Sprintf("k%d", (b*1000+i)%37))
			}
			enqueue(t, pool, msgs...)
		}
		start(t, newRelay(t, pool, s, relay.Config{Capture: capture}))

		s.waitDistinct(t, total, 60*time.Second)
		require.Eventually(t, func() bool { return countRows(t, pool, `SELECT count(*) FROM outbox`) == 0 },
			10*time.Second, 10*time.Millisecond, "published rows are deleted")

		got := s.all()
		require.Len(t, got, total, "a happy run publishes each message once")
		want := map[string]bool{}
		for _, id := range w.written() {
			want[id.String()] = true
		}
		for _, d := range got {
			require.True(t, want[d.id], "unknown message %s", d.id)
			delete(want, d.id)
		}
		require.Empty(t, want, "messages missing")
		requireKeyOrder(t, got)
	})
}

func TestRelayMessageCarriesIDPayloadAndMetadata(t *testing.T) {
	t.Parallel()
	forEachCapture(t, func(t *testing.T, capture relay.Capture) {
		pool := pgtest.NewPool(t)
		s := newSink(t)
		id := uuid.New()
		payload := []byte{0, 1, 2, 0xff}
		enqueue(t, pool, outbox.Message{
			ID: id, Topic: testTopic, Key: "user-7", Payload: payload,
			Metadata: map[string]string{outbox.MetadataCorrelationID: "req-1", outbox.MetadataTraceparent: "00-abc-def-01"},
		})
		var createdAt time.Time
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT created_at FROM outbox`).Scan(&createdAt))
		start(t, newRelay(t, pool, s, relay.Config{Capture: capture}))

		s.waitDistinct(t, 1, 10*time.Second)
		msg := s.all()[0].msg
		require.Equal(t, id.String(), msg.UUID)
		require.Equal(t, payload, []byte(msg.Payload))
		require.Equal(t, id.String(), msg.Metadata.Get(outbox.MetadataMessageID))
		require.Equal(t, "user-7", msg.Metadata.Get(outbox.MetadataKey))
		require.Equal(t, "req-1", msg.Metadata.Get(outbox.MetadataCorrelationID))
		require.Equal(t, "00-abc-def-01", msg.Metadata.Get(outbox.MetadataTraceparent))
		enqueuedAt, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get(outbox.MetadataEnqueuedAt))
		require.NoError(t, err)
		require.True(t, createdAt.Equal(enqueuedAt), "enqueued_at %s is the row's created_at %s", enqueuedAt, createdAt)
	})
}

func TestRelayRetentionMarksThenPurges(t *testing.T) {
	t.Parallel()
	forEachCapture(t, func(t *testing.T, capture relay.Capture) {
		pool := pgtest.NewPool(t)
		s := newSink(t)
		const total = 500
		var w keyedWriter
		msgs := make([]outbox.Message, total)
		for i := range msgs {
			msgs[i] = w.next(fmt.Sprintf("k%d", i%5))
		}
		enqueue(t, pool, msgs...)
		start(t, newRelay(t, pool, s, relay.Config{Capture: capture, Retention: 4 * time.Second, BatchSize: 100}))

		s.waitDistinct(t, total, 20*time.Second)
		// The last batch is marked right after its messages are delivered.
		require.Eventually(t, func() bool {
			return countRows(t, pool, `SELECT count(*) FROM outbox WHERE published_at IS NOT NULL`) == total
		}, 5*time.Second, 5*time.Millisecond, "published rows are kept, marked")
		require.Zero(t, countRows(t, pool, `SELECT count(*) FROM outbox WHERE published_at IS NULL`))

		require.Eventually(t, func() bool { return countRows(t, pool, `SELECT count(*) FROM outbox`) == 0 },
			20*time.Second, 50*time.Millisecond, "rows older than the retention are purged")
		require.Len(t, s.all(), total, "marked rows are never published again")
	})
}

func TestRelayNeverPublishesRolledBackRows(t *testing.T) {
	t.Parallel()
	forEachCapture(t, func(t *testing.T, capture relay.Capture) {
		ctx := context.Background()
		pool := pgtest.NewPool(t)
		s := newSink(t)
		start(t, newRelay(t, pool, s, relay.Config{Capture: capture}))

		rolledBack := msgSeq("k", 1)
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		require.NoError(t, outbox.EnqueueTx(ctx, tx, rolledBack))
		require.NoError(t, tx.Rollback(ctx))
		committed := msgSeq("k", 1)
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return outbox.EnqueueTx(ctx, tx, committed) })
		require.NoError(t, err)

		// The committed message came later, with a higher id: once it is out,
		// the relay has passed where the rolled-back one would have been.
		require.Eventually(t, func() bool { return s.has(committed.ID) }, 10*time.Second, 5*time.Millisecond)
		require.False(t, s.has(rolledBack.ID))
		require.Len(t, s.all(), 1)
	})
}

func TestRelayRunsOnceAtATime(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	r := start(t, newRelay(t, pool, newSink(t), relay.Config{}))
	require.Eventually(t, r.IsLeader, 5*time.Second, time.Millisecond)
	require.ErrorIs(t, r.Run(context.Background()), relay.ErrRunning)
	require.True(t, r.IsLeader(), "the refused Run disturbs nothing")
}
