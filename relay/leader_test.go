package relay_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// Three replicas share a database and a broker; the leader is killed twice
// mid-stream (its lock connection terminated and its Run stopped, as a
// kill -9 would). One replica leads at a time, a standby takes over within
// 5 s, nothing is lost and each key's first deliveries stay in order.
func TestRelayFailsOverWhenTheLeaderDies(t *testing.T) {
	t.Parallel()
	forEachCapture(t, func(t *testing.T, capture relay.Capture) {
		ctx := context.Background()
		pool := pgtest.NewPool(t)
		s := newSink(t)

		relays := make([]*running, 3)
		for i := range relays {
			relays[i] = start(t, newRelay(t, pool, s, relay.Config{Capture: capture,
				Name: fmt.Sprintf("r%d", i), BatchSize: 50, Concurrency: 4, PollInterval: 50 * time.Millisecond,
			}))
		}

		// Never two leaders at once, sampled far faster than a takeover.
		var most atomic.Int32
		stopWatch := make(chan struct{})
		var watch sync.WaitGroup
		watch.Go(func() {
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stopWatch:
					return
				case <-tick.C:
				}
				n := int32(0)
				for _, r := range relays {
					if r.IsLeader() {
						n++
					}
				}
				if n > most.Load() {
					most.Store(n)
				}
			}
		})
		defer func() { close(stopWatch); watch.Wait() }()

		// A steady stream of small transactions over 20 keys, ~1000 msg/s.
		var w keyedWriter
		var writing sync.WaitGroup
		writeCtx, stopWriting := context.WithCancel(ctx)
		defer stopWriting()
		writing.Go(func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-writeCtx.Done():
					return
				case <-tick.C:
				}
				msgs := make([]outbox.Message, 5)
				for j := range msgs {
					msgs[j] = w.next(fmt.Sprintf("k%d", (i*5+j)%20))
				}
				enqueue(t, pool, msgs...)
			}
		})

		leader := func() *running {
			for _, r := range relays {
				if r.IsLeader() {
					return r
				}
			}
			return nil
		}
		for kill := 1; kill <= 2; kill++ {
			delivered := s.distinct()
			s.waitDistinct(t, delivered+500, 20*time.Second)
			var victim *running
			require.Eventually(t, func() bool { victim = leader(); return victim != nil }, 5*time.Second, time.Millisecond)
			pid := lockHolder(t, pool, relay.LockKeyDefault)
			require.NotZero(t, pid)

			killedAt := time.Now()
			terminate(t, pool, pid)
			victim.stop(t)
			require.Eventually(t, func() bool {
				next := leader()
				return next != nil && next != victim
			}, 5*time.Second, time.Millisecond, "a standby takes over within 5 s")
			t.Logf("kill %d: takeover in %s", kill, time.Since(killedAt).Round(time.Millisecond))
		}
		delivered := s.distinct()
		s.waitDistinct(t, delivered+500, 20*time.Second)
		stopWriting()
		writing.Wait()

		written := w.written()
		s.waitDistinct(t, len(written), 60*time.Second)
		if !assert.Eventually(t, func() bool { return countRows(t, pool, `SELECT count(*) FROM outbox`) == 0 },
			10*time.Second, 10*time.Millisecond) {
			rows, _ := pool.Query(ctx, `SELECT id, key, attempts, xid::text, created_at FROM outbox ORDER BY id`)
			for rows.Next() {
				vals, _ := rows.Values()
				t.Log("left:", vals)
			}
			rows.Close()
			t.FailNow()
		}
		got := s.all()
		ids := map[string]bool{}
		for _, d := range got {
			ids[d.id] = true
		}
		for _, id := range written {
			require.True(t, ids[id.String()], "message %s lost", id)
		}
		requireKeyOrder(t, got)
		require.EqualValues(t, 1, most.Load(), "one leader at a time")
		t.Logf("%d messages, %d deliveries (%d re-sent after a kill)", len(written), len(got), len(got)-len(written))

		var name string
		var heartbeatAge float64
		require.NoError(t, pool.QueryRow(ctx,
			`SELECT name, extract(epoch FROM now() - heartbeat_at) FROM relay_leader WHERE lock_key = $1`,
			relay.LockKeyDefault).Scan(&name, &heartbeatAge))
		require.Equal(t, leader().Relay, relayNamed(relays, name).Relay, "relay_leader names the leader")
		require.Less(t, heartbeatAge, 3*relay.LeaderHeartbeatInterval.Seconds())
	})
}

func relayNamed(relays []*running, name string) *running {
	for i, r := range relays {
		if name == fmt.Sprintf("r%d", i) {
			return r
		}
	}
	return nil
}

// A leader whose lock connection is cut stops publishing at once, even when
// its process lives on, and leads again once it has the lock back.
func TestRelayStepsDownWhenItsLockConnectionDrops(t *testing.T) {
	t.Parallel()
	forEachCapture(t, func(t *testing.T, capture relay.Capture) {
		pool := pgtest.NewPool(t)
		s := newSink(t)
		r := start(t, newRelay(t, pool, s, relay.Config{Capture: capture}))
		require.Eventually(t, r.IsLeader, 5*time.Second, time.Millisecond)

		pid := lockHolder(t, pool, relay.LockKeyDefault)
		terminate(t, pool, pid)
		require.Eventually(t, func() bool { return !r.IsLeader() }, time.Second, time.Millisecond,
			"a dropped lock connection is noticed at once, not at the next check")

		require.Eventually(t, func() bool {
			p := lockHolder(t, pool, relay.LockKeyDefault)
			return r.IsLeader() && p != 0 && p != pid
		}, 10*time.Second, 5*time.Millisecond, "it reconnects and leads again")
		m := msgSeq("k", 1)
		enqueue(t, pool, m)
		require.Eventually(t, func() bool { return s.has(m.ID) }, 10*time.Second, 5*time.Millisecond)
	})
}

// The leader refreshes its relay_leader row every few seconds.
func TestRelayLeaderHeartbeats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	r := start(t, newRelay(t, pool, newSink(t), relay.Config{Name: "replica-a"}))
	require.Eventually(t, r.IsLeader, 5*time.Second, time.Millisecond)

	var name string
	var since, first time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT name, since, heartbeat_at FROM relay_leader WHERE lock_key = $1`,
		relay.LockKeyDefault).Scan(&name, &since, &first))
	require.Equal(t, "replica-a", name)
	require.Eventually(t, func() bool {
		var beat, again time.Time
		require.NoError(t, pool.QueryRow(ctx, `SELECT since, heartbeat_at FROM relay_leader`).Scan(&again, &beat))
		return beat.After(first) && again.Equal(since)
	}, 10*time.Second, 50*time.Millisecond)

	l, err := relay.CurrentLeader(ctx, pool, 0)
	require.NoError(t, err)
	require.Equal(t, "replica-a", l.Name)
	require.True(t, l.Alive)
	require.True(t, l.Since.Equal(since))

	r.stop(t) // no heartbeat may refresh the row below
	_, err = pool.Exec(ctx, `UPDATE relay_leader SET heartbeat_at = now() - interval '1 minute'`)
	require.NoError(t, err)
	l, err = relay.CurrentLeader(ctx, pool, relay.LockKeyDefault)
	require.NoError(t, err)
	require.False(t, l.Alive, "a stale heartbeat is not alive")
	_, err = relay.CurrentLeader(ctx, pool, 42)
	require.ErrorIs(t, err, relay.ErrNoLeader)
}
