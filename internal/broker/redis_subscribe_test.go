package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
)

// TestRedisSubscriptionDepartedConsumersPendingIsClaimed checks that what
// a departed consumer of a group left pending is claimed once it has been
// pending for Config.AckTimeout, after what a closed subscription with
// Config.InFlight set gave back, which comes at once.
// TestSubscriptionHandsOnInFlight checks the rest of what InFlight means.
func TestRedisSubscriptionDepartedConsumersPendingIsClaimed(t *testing.T) {
	t.Parallel()
	b := setupInFlight(t, broker.KindRedis, context.Background())
	b.receive(t, inFlight)
	// Another consumer of the group reads the rest and dies.
	read, err := redisClient(t, b).XReadGroup(context.Background(), &redis.XReadGroupArgs{
		Group: b.group, Consumer: b.group + "-departed", Streams: []string{b.topic, ">"}, Count: backlog,
	}).Result()
	require.NoError(t, err)
	departed := time.Now()
	require.Len(t, read[0].Messages, backlog-inFlight)
	closeWithin(t, "subscriber", b.sub, closeTimeout)

	cfg := b.cfg
	cfg.AckTimeout = time.Second
	sub, ch := subscribe(t, cfg, b.group, b.topic)
	// What the closed subscription gave back comes at once, what the
	// departed consumer holds once it has been pending for AckTimeout.
	requireInOrder(t, b.msgs[:inFlight], collect(ch, inFlight, receiveTimeout))
	claimed := next(t, ch, receiveTimeout)
	require.GreaterOrEqual(t, time.Since(departed), cfg.AckTimeout)
	require.True(t, claimed.Ack())
	got := append([]*message.Message{claimed}, collect(ch, backlog-inFlight-1, receiveTimeout)...)
	requireInOrder(t, b.msgs[inFlight:], got)
	closeWithin(t, "claiming subscriber", sub, closeTimeout)
	requireNonePending(t, b)
}

// redisClient is a client of b's Redis of its own.
func redisClient(t *testing.T, b *inFlightBundle) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(b.cfg.URL)
	require.NoError(t, err)
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// requireNonePending fails unless b's group has no message pending on its
// topic.
func requireNonePending(t *testing.T, b *inFlightBundle) {
	t.Helper()
	pending, err := redisClient(t, b).XPending(context.Background(), b.topic, b.group).Result()
	require.NoError(t, err)
	require.Zero(t, pending.Count, "pending messages of group %s", b.group)
}
