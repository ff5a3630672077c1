package relay_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

func TestRelayMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := newSink(t)
	s.setFail(func(*message.Message) error { return errBrokerDown })
	reg := prometheus.NewPedanticRegistry()
	r := start(t, newRelay(t, pool, s, relay.Config{Registerer: reg, MetricsInterval: 20 * time.Millisecond}))
	value := func(name, label string) float64 { return testutil.ToFloat64(metric(t, reg, name, label)) }

	require.Eventually(t, r.IsLeader, 5*time.Second, time.Millisecond)
	require.Equal(t, 1.0, value("outboxd_relay_leader", ""))

	// The broker is down: the backlog and its age grow, failures are
	// counted as transient.
	msgs := make([]outbox.Message, 7)
	for i := range msgs {
		msgs[i] = msgSeq(fmt.Sprint(i), 1)
	}
	enqueue(t, pool, msgs...)
	require.Eventually(t, func() bool {
		return value("outboxd_relay_backlog", "") == 7 && value("outboxd_relay_oldest_pending_age_seconds", "") > 0.1
	}, 5*time.Second, 10*time.Millisecond)
	require.Positive(t, value("outboxd_relay_publish_failures_total", "transient"))
	require.Zero(t, value("outboxd_relay_publish_failures_total", "permanent"))

	// An open transaction with an xid holds the horizon back.
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `SELECT pg_current_xact_id()`)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return value("outboxd_relay_horizon_age_seconds", "") > 0.2 },
		5*time.Second, 10*time.Millisecond)
	require.NoError(t, tx.Rollback(ctx))
	require.Eventually(t, func() bool { return value("outboxd_relay_horizon_age_seconds", "") < 0.1 },
		5*time.Second, 10*time.Millisecond, "the horizon moves on once the transaction ends")

	s.setFail(nil)
	s.waitDistinct(t, 7, 10*time.Second)
	require.Eventually(t, func() bool {
		return value("outboxd_relay_published_total", "") == 7 && value("outboxd_relay_backlog", "") == 0 &&
			value("outboxd_relay_oldest_pending_age_seconds", "") == 0
	}, 5*time.Second, 10*time.Millisecond)
	n, err := testutil.GatherAndCount(reg, "outboxd_relay_batch_duration_seconds")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	// Each message's enqueue → publish latency, at least the outage it waited out.
	families, err := reg.Gather()
	require.NoError(t, err)
	var latency *dto.Histogram
	for _, f := range families {
		if f.GetName() == "outboxd_relay_publish_latency_seconds" {
			latency = f.GetMetric()[0].GetHistogram()
		}
	}
	require.NotNil(t, latency, "outboxd_relay_publish_latency_seconds is exported")
	require.EqualValues(t, 7, latency.GetSampleCount(), "one observation per published message")
	require.Greater(t, latency.GetSampleSum()/7, 0.1, "the mean covers the outage the messages waited")
	require.Zero(t, value("outboxd_relay_dead_lettered_total", ""))

	r.stop(t)
	require.Zero(t, value("outboxd_relay_leader", ""), "a stopped relay does not lead")
}
