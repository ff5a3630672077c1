package relay_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// Stopping in the middle of a batch records what was published and leaves
// the rest, unmarked, for the next leader.
func TestRelayStopsMidBatchWithoutLosingOrMarkingMessages(t *testing.T) {
	t.Parallel()
	forEachCapture(t, func(t *testing.T, capture relay.Capture) {
		pool := pgtest.NewPool(t)
		s := newSink(t)
		var w keyedWriter
		msgs := make([]outbox.Message, 100)
		for i := range msgs {
			msgs[i] = w.next("k")
		}
		enqueue(t, pool, msgs...)

		var published atomic.Int32
		stuck := make(chan struct{})
		s.setFail(func(m *message.Message) error {
			if published.Load() == 40 {
				close(stuck)
				<-m.Context().Done() // a broker that hangs until the relay gives up
				return fmt.Errorf("publish: %w", m.Context().Err())
			}
			published.Add(1)
			return nil
		})
		r := start(t, newRelay(t, pool, s, relay.Config{Capture: capture, BatchSize: 100}))
		<-stuck
		r.stop(t)

		require.Equal(t, 40, s.distinct())
		require.Equal(t, 60, countRows(t, pool, `SELECT count(*) FROM outbox WHERE published_at IS NULL`),
			"the published 40 are deleted, the other 60 stay as they were")
		require.Zero(t, countRows(t, pool, `SELECT count(*) FROM outbox WHERE attempts > 0`), "stopping is not failing")

		s.setFail(nil)
		start(t, newRelay(t, pool, s, relay.Config{Capture: capture}))
		s.waitDistinct(t, 100, 10*time.Second)
		require.Len(t, s.all(), 100, "nothing published twice")
		requireKeyOrder(t, s.all())
	})
}
