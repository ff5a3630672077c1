package relay_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// A transient failure in the middle of a batch retries from the failed
// message: the rest of the batch, and the next batch claimed meanwhile,
// wait for it, and no attempt is counted.
func TestRelayRetriesFromATransientFailure(t *testing.T) {
	t.Parallel()
	forEachCapture(t, func(t *testing.T, capture relay.Capture) {
		pool := pgtest.NewPool(t)
		s := newSink(t)
		var w keyedWriter
		msgs := make([]outbox.Message, 50)
		for i := range msgs {
			msgs[i] = w.next("k")
		}
		enqueue(t, pool, msgs...)

		var failed atomic.Bool
		s.setFail(func(m *message.Message) error {
			if m.UUID == msgs[4].ID.String() && failed.CompareAndSwap(false, true) {
				return errBrokerDown
			}
			return nil
		})
		start(t, newRelay(t, pool, s, relay.Config{Capture: capture, BatchSize: 10, Concurrency: 1}))

		s.waitDistinct(t, len(msgs), 10*time.Second)
		require.True(t, failed.Load())
		requireKeyOrder(t, s.all())
		require.Len(t, s.all(), len(msgs), "what was published before the failure is not published again")
		require.Zero(t, countRows(t, pool, `SELECT count(*) FROM outbox_dead_letters`))
	})
}
