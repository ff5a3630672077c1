package relay_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

var errTooLarge = errors.New("broker: message too large")

// A message the broker rejects for good is retried MaxAttempts times, then
// dead-lettered with its error, while every other message is published;
// Replay brings it back under the same message id.
func TestRelayDeadLettersAPermanentlyRejectedMessage(t *testing.T) {
	t.Parallel()
	forEachCapture(t, func(t *testing.T, capture relay.Capture) {
		ctx := context.Background()
		pool := pgtest.NewPool(t)
		s := newSink(t)
		reg := prometheus.NewPedanticRegistry()

		var w keyedWriter
		var msgs []outbox.Message
		for i := range 100 {
			msgs = append(msgs, w.next(fmt.Sprintf("k%d", i%5)))
		}
		poison := msgs[42]
		s.setFail(func(m *message.Message) error {
			if m.UUID == poison.ID.String() {
				return fmt.Errorf("%w: %w", relay.ErrPermanent, errTooLarge)
			}
			return nil
		})
		enqueue(t, pool, msgs...)
		r := start(t, newRelay(t, pool, s, relay.Config{Capture: capture, MaxAttempts: 3, Registerer: reg}))

		var letters []relay.DeadLetter
		require.Eventually(t, func() bool {
			var err error
			letters, err = relay.ListDeadLetters(ctx, pool, relay.ListDeadLettersParams{})
			require.NoError(t, err)
			return len(letters) == 1
		}, 20*time.Second, 10*time.Millisecond)
		d := letters[0]
		require.Equal(t, poison.ID, d.MessageID)
		require.Equal(t, poison.Key, d.Key)
		require.Equal(t, poison.Payload, d.Payload)
		require.Equal(t, poison.Metadata["seq"], d.Metadata["seq"])
		require.Equal(t, 3, d.Attempts)
		require.Contains(t, d.LastError, errTooLarge.Error())
		require.Zero(t, countRows(t, pool, `SELECT count(*) FROM outbox WHERE message_id = $1`, poison.ID),
			"a dead letter is in one table only")

		s.waitDistinct(t, 99, 20*time.Second)
		require.False(t, s.has(poison.ID))
		require.Equal(t, 3.0, testutil.ToFloat64(metric(t, reg, "outboxd_relay_publish_failures_total", "permanent")))
		require.Equal(t, 1.0, testutil.ToFloat64(metric(t, reg, "outboxd_relay_dead_lettered_total", "")))

		// The broker takes it now: replay it.
		s.setFail(nil)
		n, err := relay.Replay(ctx, pool, d.ID)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		require.Eventually(t, func() bool { return s.has(poison.ID) }, 10*time.Second, 5*time.Millisecond)
		letters, err = relay.ListDeadLetters(ctx, pool, relay.ListDeadLettersParams{})
		require.NoError(t, err)
		require.Empty(t, letters)
		require.True(t, r.IsLeader())
	})
}

// A message rejected, then accepted on a later attempt, is not overtaken by
// the later messages of its key, while other keys flow on.
func TestRelayRetriedMessageHoldsBackItsKey(t *testing.T) {
	t.Parallel()
	forEachCapture(t, func(t *testing.T, capture relay.Capture) {
		pool := pgtest.NewPool(t)
		s := newSink(t)

		var w keyedWriter
		var msgs []outbox.Message
		for i := range 40 {
			msgs = append(msgs, w.next(fmt.Sprintf("k%d", i%4)))
		}
		flaky := msgs[5] // k1 #2
		var rejections atomic.Int32
		s.setFail(func(m *message.Message) error {
			if m.UUID == flaky.ID.String() && rejections.Add(1) <= 2 {
				return relay.ErrPermanent
			}
			return nil
		})
		// One message per batch would hide the bug: the held key must be held
		// across batches, by the database.
		enqueue(t, pool, msgs...)
		start(t, newRelay(t, pool, s, relay.Config{Capture: capture,
			MaxAttempts: 5, BatchSize: 4, RetryBackoffMin: 100 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond,
		}))

		s.waitDistinct(t, len(msgs), 20*time.Second)
		require.EqualValues(t, 3, rejections.Load())
		requireKeyOrder(t, s.all())
	})
}

func TestDeadLetterListPagesAndPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	for i := range 5 {
		_, err := pool.Exec(ctx, `
INSERT INTO outbox_dead_letters (id, message_id, topic, key, payload, metadata, created_at, xid, attempts, next_attempt_at, last_error)
VALUES ($1, gen_random_uuid(), 't', 'k', '\x00', '{}', now(), pg_current_xact_id(), 5, now(), 'rejected')`, i+10)
		require.NoError(t, err)
	}
	page, err := relay.ListDeadLetters(ctx, pool, relay.ListDeadLettersParams{Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []int64{10, 11}, ids(page))
	page, err = relay.ListDeadLetters(ctx, pool, relay.ListDeadLettersParams{AfterID: 11, Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []int64{12, 13}, ids(page))

	n, err := relay.PurgeDeadLetters(ctx, pool, 10, 12, 99)
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	n, err = relay.PurgeDeadLetters(ctx, pool)
	require.NoError(t, err)
	require.Zero(t, n, "no ids purges nothing")
	n, err = relay.Replay(ctx, pool)
	require.NoError(t, err)
	require.Zero(t, n, "no ids replays nothing")
	rest, err := relay.ListDeadLetters(ctx, pool, relay.ListDeadLettersParams{})
	require.NoError(t, err)
	require.Equal(t, []int64{11, 13, 14}, ids(rest))

	n, err = relay.Replay(ctx, pool, 14, 11)
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	require.Equal(t, 2, countRows(t, pool, `SELECT count(*) FROM outbox WHERE attempts = 0 AND last_error IS NULL`))

	n, err = relay.PurgeAllDeadLetters(ctx, pool)
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "13 was left")
	rest, err = relay.ListDeadLetters(ctx, pool, relay.ListDeadLettersParams{})
	require.NoError(t, err)
	require.Empty(t, rest)
	n, err = relay.PurgeAllDeadLetters(ctx, pool)
	require.NoError(t, err)
	require.Zero(t, n)
}

func ids(ds []relay.DeadLetter) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// metric finds a registered counter or gauge by name and, for a vector, its
// one label's value.
func metric(t testing.TB, reg *prometheus.Registry, name, label string) prometheus.Collector {
	t.Helper()
	return &gathered{t: t, reg: reg, name: name, label: label}
}

// gathered is a collector reading one value back from a registry, so that
// testutil.ToFloat64 can read metrics by name.
type gathered struct {
	t     testing.TB
	reg   *prometheus.Registry
	name  string
	label string
}

func (g *gathered) Describe(ch chan<- *prometheus.Desc) {
	ch <- prometheus.NewDesc(g.name, "gathered", nil, nil)
}

func (g *gathered) Collect(ch chan<- prometheus.Metric) {
	families, err := g.reg.Gather()
	require.NoError(g.t, err)
	for _, f := range families {
		if f.GetName() != g.name {
			continue
		}
		for _, m := range f.GetMetric() {
			if g.label != "" && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != g.label) {
				continue
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.name, "gathered", nil, nil), prometheus.UntypedValue, v)
			return
		}
	}
	g.t.Fatalf("metric %s{%s} not registered", g.name, g.label)
}
