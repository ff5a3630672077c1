package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/relay"
)

// walConfig is a WAL-capture relay config with quick test intervals.
func walConfig(cfg relay.Config) relay.Config {
	cfg.Capture = relay.CaptureWAL
	if cfg.WALStatusInterval == 0 {
		cfg.WALStatusInterval = 200 * time.Millisecond
	}
	return cfg
}

// What the table holds when the slot is new is published first, then what
// the stream carries, each once.
func TestWALPublishesTheTableThenTheStream(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := newSink(t)
	var w keyedWriter
	for range 5 {
		enqueue(t, pool, w.next("a"), w.next("b"))
	}
	r := start(t, newRelay(t, pool, s, walConfig(relay.Config{})))
	s.waitDistinct(t, 10, 20*time.Second)
	require.Equal(t, relay.CaptureWAL, r.Capture())
	for range 5 {
		enqueue(t, pool, w.next("a"), w.next("b"))
	}
	s.waitDistinct(t, 20, 20*time.Second)
	requireKeyOrder(t, s.all())
	require.Len(t, s.all(), 20, "no message twice")
	require.Eventually(t, func() bool {
		return countRows(t, pool, `SELECT count(*) FROM outbox`) == 0
	}, 10*time.Second, 10*time.Millisecond)
	_ = context.Background()
}
