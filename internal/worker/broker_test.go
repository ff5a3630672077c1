package worker_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/worker"
)

// startNATS runs an embedded NATS JetStream server for the test and returns
// a broker config for it.
func startNATS(t *testing.T) broker.Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url, stop, err := broker.StartEmbeddedNATS(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(stop)
	return broker.Config{Kind: broker.KindNATS, URL: url, Logger: slog.New(slog.DiscardHandler)}
}

func publisher(t *testing.T, cfg broker.Config) message.Publisher {
	t.Helper()
	pub, err := broker.NewPublisher(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

// TestThroughNATSJetStream runs the worker on durable consumer groups of a
// real broker. The events are published while no worker runs: each group
// picks them up when it first subscribes.
func TestThroughNATSJetStream(t *testing.T) {
	t.Parallel()
	bcfg := startNATS(t)
	b := setup(t, setupOpts{subscribe: func(ctx context.Context, group string) (message.Subscriber, error) {
		return broker.NewSubscriber(ctx, bcfg, group)
	}})
	pub := publisher(t, bcfg)

	const n = 20
	ids := make(map[string]uuid.UUID, n)
	for i := range n {
		ev := newEvent("User " + string(rune('A'+i)))
		insertUser(t, b.pool, ev)
		id := uuid.New()
		ids[mail.MessageID(id)] = id
		require.NoError(t, pub.Publish(event.TopicUserCreated, newMessage(t, id, ev, "")))
	}
	b.start(t)

	waitCount(t, b.pool, 3*n, 30*time.Second, `SELECT count(*) FROM inbox`)
	require.Equal(t, n, count(t, b.pool, `SELECT count(*) FROM profiles`))
	require.Equal(t, n, count(t, b.pool, `SELECT count(DISTINCT message_id) FROM audit_log`))
	require.Equal(t, n, count(t, b.pool, `SELECT count(*) FROM audit_log`))
	mails := b.smtp.WaitForCount(n, 10*time.Second)
	require.Len(t, mails, n)
	for _, m := range mails {
		require.Contains(t, ids, m.MessageID)
	}
	require.Zero(t, count(t, b.pool, `SELECT count(*) FROM dead_letters`))
	for _, h := range worker.AllHandlers {
		require.Equal(t, float64(n), metric(t, b.reg, "outboxd_worker_messages_handled_total", h), h)
	}
}
