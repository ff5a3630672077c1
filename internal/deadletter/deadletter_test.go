package deadletter_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/deadletter"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
)

type testBundle struct {
	pool *pgxpool.Pool
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	return &testBundle{pool: pgtest.NewPool(t)}
}

// letter is a dead letter as the worker stores it: the message with the
// metadata the relay gave it.
func letter(handler string, id uuid.UUID) deadletter.DeadLetter {
	return deadletter.DeadLetter{
		Handler:   handler,
		MessageID: id,
		Topic:     "user.created",
		Payload:   []byte(`{"user_id":"` + id.String() + `"}`),
		Metadata: map[string]string{
			outbox.MetadataMessageID:     id.String(),
			outbox.MetadataKey:           "user-1",
			outbox.MetadataEnqueuedAt:    "2026-01-02T03:04:05Z",
			outbox.MetadataCorrelationID: "req-7",
			outbox.MetadataTraceparent:   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		},
		Error:    "insert profile: violates foreign key constraint",
		Attempts: 6,
	}
}

func (b *testBundle) add(t *testing.T, d deadletter.DeadLetter) int64 {
	t.Helper()
	id, err := deadletter.Add(context.Background(), b.pool, d)
	require.NoError(t, err)
	return id
}

func TestAddAndList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("KeepsTheMessageAsItArrived", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		want := letter("profile", uuid.New())
		id := b.add(t, want)

		got, err := deadletter.List(ctx, b.pool, deadletter.Filter{})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, id, got[0].ID)
		require.Equal(t, want.Handler, got[0].Handler)
		require.Equal(t, want.MessageID, got[0].MessageID)
		require.Equal(t, want.Topic, got[0].Topic)
		require.Equal(t, want.Payload, got[0].Payload)
		require.Equal(t, want.Metadata, got[0].Metadata)
		require.Equal(t, want.Error, got[0].Error)
		require.Equal(t, 6, got[0].Attempts)
		require.False(t, got[0].FailedAt.IsZero())
	})

	t.Run("SameHandlerAndMessageAddsUp", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d := letter("profile", uuid.New())
		first := b.add(t, d)
		d.Error, d.Attempts = "second failure", 3
		require.Equal(t, first, b.add(t, d), "one row per handler and message")

		got, err := deadletter.List(ctx, b.pool, deadletter.Filter{})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, "second failure", got[0].Error)
		require.Equal(t, 9, got[0].Attempts)
	})

	t.Run("LongErrorIsCut", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d := letter("email", uuid.New())
		d.Error = strings.Repeat("é", 5000)
		b.add(t, d)
		got, err := deadletter.List(ctx, b.pool, deadletter.Filter{})
		require.NoError(t, err)
		require.Less(t, len(got[0].Error), 4200)
		require.True(t, strings.HasPrefix(got[0].Error, "éé"))
	})

	t.Run("FiltersAndPages", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		shared := uuid.New()
		ids := []int64{
			b.add(t, letter("email", shared)),
			b.add(t, letter("profile", shared)),
			b.add(t, letter("email", uuid.New())),
			b.add(t, letter("audit", uuid.New())),
		}

		emails, err := deadletter.List(ctx, b.pool, deadletter.Filter{Handler: "email"})
		require.NoError(t, err)
		require.Equal(t, []int64{ids[0], ids[2]}, idsOf(emails))

		ofMessage, err := deadletter.List(ctx, b.pool, deadletter.Filter{MessageID: shared})
		require.NoError(t, err)
		require.Equal(t, []int64{ids[0], ids[1]}, idsOf(ofMessage))

		page1, err := deadletter.List(ctx, b.pool, deadletter.Filter{Limit: 3})
		require.NoError(t, err)
		require.Equal(t, ids[:3], idsOf(page1))
		page2, err := deadletter.List(ctx, b.pool, deadletter.Filter{Limit: 3, AfterID: page1[2].ID})
		require.NoError(t, err)
		require.Equal(t, ids[3:], idsOf(page2))

		_, err = deadletter.List(ctx, b.pool, deadletter.Filter{Limit: -1})
		require.ErrorContains(t, err, "Filter.Limit")
	})

	t.Run("RejectsMissingHandlerOrID", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := deadletter.Add(ctx, b.pool, letter("", uuid.New()))
		require.ErrorContains(t, err, "Handler")
		_, err = deadletter.Add(ctx, b.pool, letter("email", uuid.Nil))
		require.ErrorContains(t, err, "MessageID")
	})
}

func TestReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("PutsTheSameMessageBackIntoTheOutbox", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d := letter("profile", uuid.New())
		id := b.add(t, d)

		n, err := deadletter.Replay(ctx, b.pool, id)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)

		left, err := deadletter.List(ctx, b.pool, deadletter.Filter{})
		require.NoError(t, err)
		require.Empty(t, left, "a replayed dead letter is gone")

		var (
			messageID    uuid.UUID
			topic, key   string
			payload, raw []byte
		)
		require.NoError(t, b.pool.QueryRow(ctx,
			`SELECT message_id, topic, key, payload, metadata FROM outbox`,
		).Scan(&messageID, &topic, &key, &payload, &raw))
		require.Equal(t, d.MessageID, messageID, "the message id is kept, so inboxes dedupe it")
		require.Equal(t, "user.created", topic)
		require.Equal(t, "user-1", key)
		require.Equal(t, d.Payload, payload)
		var md map[string]string
		require.NoError(t, json.Unmarshal(raw, &md))
		require.Equal(t, map[string]string{
			outbox.MetadataCorrelationID: "req-7",
			outbox.MetadataTraceparent:   d.Metadata[outbox.MetadataTraceparent],
		}, md, "the relay sets message_id, key and enqueued_at afresh")
	})

	t.Run("OneMessageDeadInTwoHandlersIsEnqueuedOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		shared := uuid.New()
		other := uuid.New()
		ids := []int64{b.add(t, letter("email", shared)), b.add(t, letter("profile", shared)), b.add(t, letter("audit", other))}

		n, err := deadletter.Replay(ctx, b.pool, ids[2], ids[0], ids[1], ids[0])
		require.NoError(t, err)
		require.Equal(t, int64(3), n)
		var got []uuid.UUID
		rows, err := b.pool.Query(ctx, `SELECT message_id FROM outbox ORDER BY id`)
		require.NoError(t, err)
		for rows.Next() {
			var id uuid.UUID
			require.NoError(t, rows.Scan(&id))
			got = append(got, id)
		}
		require.NoError(t, rows.Err())
		require.Equal(t, []uuid.UUID{shared, other}, got, "once per message, in dead-letter order")
	})

	t.Run("UnknownIDReplaysNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id := b.add(t, letter("profile", uuid.New()))

		_, err := deadletter.Replay(ctx, b.pool, id, id+1000)
		require.ErrorIs(t, err, deadletter.ErrNotFound)
		require.ErrorContains(t, err, "1")

		left, err := deadletter.List(ctx, b.pool, deadletter.Filter{})
		require.NoError(t, err)
		require.Len(t, left, 1, "all or nothing")
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n))
		require.Zero(t, n)

		n2, err := deadletter.Replay(ctx, b.pool)
		require.NoError(t, err)
		require.Zero(t, n2)
	})
}

func TestPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("ByID", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a, c := b.add(t, letter("email", uuid.New())), b.add(t, letter("email", uuid.New()))
		n, err := deadletter.Purge(ctx, b.pool, a, a+1000)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		left, err := deadletter.List(ctx, b.pool, deadletter.Filter{})
		require.NoError(t, err)
		require.Equal(t, []int64{c}, idsOf(left))
		var outboxRows int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outboxRows))
		require.Zero(t, outboxRows, "purged letters are not replayed")
	})

	t.Run("AllOfOneHandlerOrAll", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.add(t, letter("email", uuid.New()))
		b.add(t, letter("email", uuid.New()))
		keep := b.add(t, letter("audit", uuid.New()))

		n, err := deadletter.PurgeAll(ctx, b.pool, "email")
		require.NoError(t, err)
		require.Equal(t, int64(2), n)
		left, err := deadletter.List(ctx, b.pool, deadletter.Filter{})
		require.NoError(t, err)
		require.Equal(t, []int64{keep}, idsOf(left))

		n, err = deadletter.PurgeAll(ctx, b.pool, "")
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
	})
}

func idsOf(letters []deadletter.DeadLetter) []int64 {
	ids := make([]int64, len(letters))
	for i, d := range letters {
		ids[i] = d.ID
	}
	return ids
}
