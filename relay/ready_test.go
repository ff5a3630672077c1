package relay_test

import (
	"context"
	"errors"
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

var errBrokerDown = errors.New("broker: connection refused")

func TestRelayReady(t *testing.T) {
	t.Parallel()

	t.Run("StalledWhenNothingIsPublishedWhileMessagesWait", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		pool := pgtest.NewPool(t)
		s := newSink(t)
		s.setFail(func(*message.Message) error { return errBrokerDown })
		cfg := relay.Config{StallTimeout: 300 * time.Millisecond}
		leader := start(t, newRelay(t, pool, s, cfg))
		require.Eventually(t, leader.IsLeader, 5*time.Second, time.Millisecond)
		standby := start(t, newRelay(t, pool, s, cfg))

		enqueue(t, pool, msgSeq("k", 1))
		require.Eventually(t, func() bool { return leader.Ready(ctx) != nil }, 5*time.Second, 10*time.Millisecond)
		require.ErrorContains(t, leader.Ready(ctx), "stalled")
		require.NoError(t, standby.Ready(ctx), "a standby is ready")
		require.False(t, standby.IsLeader())

		s.setFail(nil) // the broker is back
		require.Eventually(t, func() bool { return leader.Ready(ctx) == nil }, 5*time.Second, 10*time.Millisecond)
		s.waitDistinct(t, 1, 5*time.Second)
	})

	t.Run("ReadyWhileBusyWithALongBatch", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		pool := pgtest.NewPool(t)
		s := newSink(t)
		// A slow broker: one batch takes three times StallTimeout, yet every
		// message is progress.
		var slow atomic.Int32
		s.setFail(func(*message.Message) error {
			slow.Add(1)
			time.Sleep(5 * time.Millisecond)
			return nil
		})
		msgs := make([]outbox.Message, 350)
		for i := range msgs {
			msgs[i] = msgSeq(fmt.Sprint(i), 1)
		}
		enqueue(t, pool, msgs...)
		r := start(t, newRelay(t, pool, s, relay.Config{StallTimeout: 500 * time.Millisecond, BatchSize: 300, Concurrency: 1}))
		require.Eventually(t, r.IsLeader, 5*time.Second, time.Millisecond)
		for s.distinct() < len(msgs) {
			require.NoError(t, r.Ready(ctx), "busy is not stalled")
			time.Sleep(10 * time.Millisecond) // the sampling period of the probe
		}
		require.GreaterOrEqual(t, slow.Load(), int32(len(msgs)))
	})

	t.Run("ReadyWhenIdleLongerThanStallTimeout", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		pool := pgtest.NewPool(t)
		s := newSink(t)
		r := start(t, newRelay(t, pool, s, relay.Config{StallTimeout: 50 * time.Millisecond, PollInterval: time.Minute}))
		require.Eventually(t, r.IsLeader, 5*time.Second, time.Millisecond)
		// Past the stall timeout with nothing to publish, nor anything held
		// back by the horizon: an open transaction's row is not waiting yet.
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx) //nolint:errcheck
		require.NoError(t, outbox.EnqueueTx(ctx, tx, msgSeq("k", 1)))
		deadline := time.Now().Add(300 * time.Millisecond)
		for time.Now().Before(deadline) {
			require.NoError(t, r.Ready(ctx))
			time.Sleep(10 * time.Millisecond)
		}
	})

	t.Run("NotReadyWhenNotRunning", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		pool := pgtest.NewPool(t)
		r := newRelay(t, pool, newSink(t), relay.Config{})
		require.ErrorIs(t, r.Ready(ctx), relay.ErrNotRunning)
		rr := start(t, r)
		require.Eventually(t, func() bool { return r.Ready(ctx) == nil }, 5*time.Second, time.Millisecond)
		rr.stop(t)
		require.ErrorIs(t, r.Ready(ctx), relay.ErrNotRunning)
	})
}
