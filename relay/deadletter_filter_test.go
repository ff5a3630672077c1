package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/relay"
)

func TestDeadLetterFilter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	shared := uuid.New()

	// Five dead letters, ids 10 to 14; 11 and 12 failed at the same time,
	// so that the keyset's tie-break on the id shows.
	seed := func(t *testing.T) *pgxpool.Pool {
		t.Helper()
		pool := pgtest.NewPool(t)
		for i, at := range []time.Duration{0, time.Minute, time.Minute, 2 * time.Minute, 3 * time.Minute} {
			topic, key, id := "t", "k", uuid.New()
			if i == 4 {
				topic, key, id = "other", "k2", shared
			}
			_, err := pool.Exec(ctx, `
INSERT INTO outbox_dead_letters (id, message_id, topic, key, payload, metadata, created_at, xid, attempts, next_attempt_at, last_error, failed_at)
VALUES ($1, $2, $3, $4, '\x00', '{}', now(), pg_current_xact_id(), 5, now(), 'rejected', $5)`, i+10, id, topic, key, base.Add(at))
			require.NoError(t, err)
		}
		return pool
	}

	t.Run("NewestFirstPagesByKeyset", func(t *testing.T) {
		t.Parallel()
		pool := seed(t)
		var got []int64
		params := relay.ListDeadLettersParams{NewestFirst: true, Limit: 2}
		for {
			page, err := relay.ListDeadLetters(ctx, pool, params)
			require.NoError(t, err)
			if len(page) == 0 {
				break
			}
			got = append(got, ids(page)...)
			params.Before = page[len(page)-1].Position()
		}
		require.Equal(t, []int64{14, 13, 12, 11, 10}, got, "latest failure first, the higher id first at the same time, each once")
	})

	t.Run("SelectsByTopicKeyMessageAndTime", func(t *testing.T) {
		t.Parallel()
		pool := seed(t)
		for _, tc := range []struct {
			filter relay.DeadLetterFilter
			want   []int64
		}{
			{relay.DeadLetterFilter{Topic: "other"}, []int64{14}},
			{relay.DeadLetterFilter{Key: "k"}, []int64{10, 11, 12, 13}},
			{relay.DeadLetterFilter{MessageID: shared}, []int64{14}},
			{relay.DeadLetterFilter{Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)}, []int64{11, 12, 13}},
		} {
			page, err := relay.ListDeadLetters(ctx, pool, relay.ListDeadLettersParams{DeadLetterFilter: tc.filter})
			require.NoError(t, err)
			require.Equal(t, tc.want, ids(page), "%+v", tc.filter)
			n, err := relay.CountDeadLetters(ctx, pool, tc.filter)
			require.NoError(t, err)
			require.EqualValues(t, len(tc.want), n, "%+v", tc.filter)
		}
	})

	t.Run("PurgeMatchingDeletesExactlyTheSelection", func(t *testing.T) {
		t.Parallel()
		pool := seed(t)
		n, err := relay.PurgeMatchingDeadLetters(ctx, pool, relay.DeadLetterFilter{Key: "k", Until: base.Add(2 * time.Minute)})
		require.NoError(t, err)
		require.EqualValues(t, 3, n)
		rest, err := relay.ListDeadLetters(ctx, pool, relay.ListDeadLettersParams{})
		require.NoError(t, err)
		require.Equal(t, []int64{13, 14}, ids(rest))
	})
}
