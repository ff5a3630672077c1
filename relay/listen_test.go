package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/relay"
)

// With a one-minute poll, only the notification can publish a commit within
// seconds, also after the listening connection was cut and reopened.
func TestRelayIsWokenByNotifications(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := newSink(t)
	r := start(t, newRelay(t, pool, s, relay.Config{PollInterval: time.Minute}))
	require.Eventually(t, r.IsLeader, 5*time.Second, time.Millisecond)

	pid := waitListener(t, pool, 0)
	m := msgSeq("k", 1)
	enqueue(t, pool, m)
	require.Eventually(t, func() bool { return s.has(m.ID) }, 3*time.Second, time.Millisecond)

	terminate(t, pool, pid)
	waitListener(t, pool, pid)
	m = msgSeq("k", 2)
	enqueue(t, pool, m)
	require.Eventually(t, func() bool { return s.has(m.ID) }, 3*time.Second, time.Millisecond,
		"the relay listens again after its connection drops")
}

// waitListener waits for a backend other than old to LISTEN on the outbox
// channel, and returns its pid.
func waitListener(t *testing.T, pool *pgxpool.Pool, old int) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		err := pool.QueryRow(context.Background(), `
SELECT coalesce(max(pid), 0) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = 'outboxd relay listen'
	AND query LIKE 'LISTEN%' AND state = 'idle' AND pid <> $1`, old).Scan(&pid)
		require.NoError(t, err)
		return pid != 0
	}, 10*time.Second, 5*time.Millisecond)
	return pid
}
