package outbox_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
)

// Many commits asking at once get one notification, soon after.
func TestNotifierCoalescesWakeUps(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	conn := listen(t, pool)
	n := outbox.NewNotifier(pool, 50*time.Millisecond, func(err error) { t.Error(err) })

	for range 100 {
		n.Notify()
	}
	require.True(t, notified(t, conn, 5*time.Second), "the first ask notifies")
	for range 100 {
		n.Notify()
	}
	require.True(t, notified(t, conn, 5*time.Second), "asks during the interval share one notification")
	require.False(t, notified(t, conn, 200*time.Millisecond), "and no more than one")
}

// BenchmarkEnqueueWakeUp compares the ways of waking polling relays on the
// commit path: NOTIFY in the writer's transaction (the zero Writer), a
// coalesced Notifier after commit, and none (WAL capture). Each op is one
// signup-shaped transaction: a row of the caller's and one message, from
// 8 writers at once.
//
//	go test -run '^$' -bench EnqueueWakeUp -benchtime 5000x ./outbox/
func BenchmarkEnqueueWakeUp(b *testing.B) {
	for _, mode := range []string{"notify_in_tx", "coalesced", "none"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			pool := pgtest.NewPool(b)
			_, err := pool.Exec(ctx, `CREATE TABLE things (id uuid PRIMARY KEY)`)
			require.NoError(b, err)
			w := outbox.Writer{WithoutNotify: mode != "notify_in_tx"}
			n := outbox.NewNotifier(pool, 0, nil)

			var left atomic.Int64
			left.Store(int64(b.N))
			b.ResetTimer()
			var writers sync.WaitGroup
			for range 8 {
				writers.Go(func() {
					for left.Add(-1) >= 0 {
						batch := &pgx.Batch{}
						id := uuid.New()
						batch.Queue(`INSERT INTO things VALUES ($1)`, id)
						if err := w.EnqueueBatch(batch, outbox.Message{Topic: "thing.created", Key: id.String(), Payload: []byte(`{}`)}); err != nil {
							panic(err)
						}
						if err := pool.SendBatch(ctx, batch).Close(); err != nil {
							panic(fmt.Sprint(err))
						}
						if mode == "coalesced" {
							n.Notify()
						}
					}
				})
			}
			writers.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
		})
	}
}
