package deadletter_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/deadletter"
)

// failedAt sets the failure time of dead letter id, for tests of the time
// filters and of the order by failure.
func (b *testBundle) failedAt(t *testing.T, id int64, at time.Time) {
	t.Helper()
	_, err := b.pool.Exec(context.Background(), `UPDATE dead_letters SET failed_at = $2 WHERE id = $1`, id, at)
	require.NoError(t, err)
}

func TestFilter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	// Five dead letters: two share a failure time, so that the keyset's
	// tie-break on ID shows.
	seed := func(t *testing.T, b *testBundle) []int64 {
		t.Helper()
		var ids []int64
		for i, at := range []time.Duration{0, time.Minute, time.Minute, 2 * time.Minute, 3 * time.Minute} {
			d := letter([]string{"email", "profile"}[i%2], uuid.New())
			if i == 4 {
				d.Topic = "order.placed"
			}
			id := b.add(t, d)
			b.failedAt(t, id, base.Add(at))
			ids = append(ids, id)
		}
		return ids
	}

	t.Run("NewestFirstPagesByKeyset", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ids := seed(t, b)
		var got []int64
		f := deadletter.Filter{NewestFirst: true, Limit: 2}
		for {
			page, err := deadletter.List(ctx, b.pool, f)
			require.NoError(t, err)
			if len(page) == 0 {
				break
			}
			got = append(got, idsOf(page)...)
			f.Before = deadletter.PositionOf(page[len(page)-1])
		}
		require.Equal(t, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}, got,
			"latest failure first, the higher ID first at the same time, each once")
	})

	t.Run("TopicAndTimeWindow", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ids := seed(t, b)
		topic, err := deadletter.List(ctx, b.pool, deadletter.Filter{Topic: "order.placed"})
		require.NoError(t, err)
		require.Equal(t, []int64{ids[4]}, idsOf(topic))

		window := deadletter.Filter{Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)}
		inWindow, err := deadletter.List(ctx, b.pool, window)
		require.NoError(t, err)
		require.Equal(t, ids[1:4], idsOf(inWindow), "Since is inclusive, Until exclusive")

		n, err := deadletter.Count(ctx, b.pool, window)
		require.NoError(t, err)
		require.Equal(t, int64(3), n)
		window.Handler = "profile"
		n, err = deadletter.Count(ctx, b.pool, window)
		require.NoError(t, err)
		require.Equal(t, int64(2), n)
	})

	t.Run("PurgeMatchingDeletesExactlyTheSelection", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ids := seed(t, b)
		n, err := deadletter.PurgeMatching(ctx, b.pool, deadletter.Filter{Handler: "email", Until: base.Add(3 * time.Minute)})
		require.NoError(t, err)
		require.Equal(t, int64(2), n) // ids[0] and ids[2]; ids[4] failed later
		left, err := deadletter.List(ctx, b.pool, deadletter.Filter{})
		require.NoError(t, err)
		require.Equal(t, []int64{ids[1], ids[3], ids[4]}, idsOf(left))
	})
}
