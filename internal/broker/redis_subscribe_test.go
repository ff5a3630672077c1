package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
)

// redisInFlight is Config.InFlight in the tests of the Redis subscription;
// redisBacklog messages are published, twice as many.
const (
	redisInFlight = 16
	redisBacklog  = 2 * redisInFlight
)

// TestRedisSubscriptionHandsOnInFlight checks that a Redis streams
// subscription hands on Config.InFlight messages before the first is
// answered, in stream order, and that each is answered on its own: a
// nacked one comes back, an acked one never does, what is in hand when the
// subscription ends goes back to the group at once (not after
// Config.AckTimeout), and what a departed consumer left pending is claimed.
func TestRedisSubscriptionHandsOnInFlight(t *testing.T) {
	t.Parallel()
	t.Run("InFlightBeforeTheFirstIsAnswered", func(t *testing.T) {
		t.Parallel()
		b := setupRedis(t, context.Background())
		held := b.receive(t, redisInFlight)
		// Only a missed bug, never a correct subscription, can make this
		// pass wrongly.
		select {
		case msg := <-b.ch:
			require.FailNow(t, "more than InFlight unanswered", "got %s while %d were in hand", msg.UUID, len(held))
		case <-time.After(200 * time.Millisecond):
		}
		// Each answer frees one slot: the next message comes.
		require.True(t, held[0].Ack())
		more := next(t, b.ch, receiveTimeout)
		requireIntact(t, b.msgs[redisInFlight], more)
		require.True(t, more.Ack())
		for _, msg := range held[1:] {
			require.True(t, msg.Ack())
		}
		rest := collect(b.ch, redisBacklog-redisInFlight-1, receiveTimeout)
		requireInOrder(t, b.msgs[redisInFlight+1:], rest)
		closeWithin(t, "subscriber", b.sub, closeTimeout)
		requireClosed(t, b.ch, closeTimeout)
		require.NoError(t, b.sub.Close(), "second Close")
		b.requirePending(t, 0)
	})
	t.Run("NackedComesBackAckedDoesNot", func(t *testing.T) {
		t.Parallel()
		b := setupRedis(t, context.Background())
		held := b.receive(t, redisInFlight)
		require.True(t, held[3].Nack())
		// Handed on again ahead of what the stream still holds.
		again := next(t, b.ch, receiveTimeout)
		requireIntact(t, b.msgs[3], again)
		require.True(t, again.Ack())
		for i, msg := range held {
			if i != 3 {
				require.True(t, msg.Ack())
			}
		}
		requireInOrder(t, b.msgs[redisInFlight:], collect(b.ch, redisBacklog-redisInFlight, receiveTimeout))
		closeWithin(t, "subscriber", b.sub, closeTimeout)
		// Every ack reached Redis before Close returned.
		b.requirePending(t, 0)
		sentinel := sample(redisBacklog, "k")
		require.NoError(t, b.pub.Publish(b.topic, sentinel))
		_, ch := subscribe(t, b.cfg, b.group, b.topic)
		requireIntact(t, sentinel, next(t, ch, receiveTimeout))
	})
	t.Run("CloseGivesBackWhatIsInHand", func(t *testing.T) {
		t.Parallel()
		b := setupRedis(t, context.Background())
		b.receive(t, redisInFlight)
		closeWithin(t, "subscriber", b.sub, closeTimeout)
		requireClosed(t, b.ch, closeTimeout)
		// Well within AckTimeout, after which any consumer would claim
		// them anyway.
		_, ch := subscribe(t, b.cfg, b.group, b.topic)
		requireInOrder(t, b.msgs, collect(ch, redisBacklog, receiveTimeout))
	})
	t.Run("EndOfContextGivesBackWhatIsInHand", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		b := setupRedis(t, ctx)
		b.receive(t, redisInFlight)
		cancel()
		requireClosed(t, b.ch, closeTimeout)
		_, again := subscribe(t, b.cfg, b.group, b.topic)
		requireInOrder(t, b.msgs, collect(again, redisBacklog, receiveTimeout))
	})
	t.Run("DepartedConsumersPendingIsClaimed", func(t *testing.T) {
		t.Parallel()
		b := setupRedis(t, context.Background())
		b.receive(t, redisInFlight)
		// Another consumer of the group reads the rest and dies.
		read, err := b.client(t).XReadGroup(context.Background(), &redis.XReadGroupArgs{
			Group: b.group, Consumer: b.group + "-departed", Streams: []string{b.topic, ">"}, Count: redisBacklog,
		}).Result()
		require.NoError(t, err)
		departed := time.Now()
		require.Len(t, read[0].Messages, redisBacklog-redisInFlight)
		closeWithin(t, "subscriber", b.sub, closeTimeout)

		cfg := b.cfg
		cfg.AckTimeout = time.Second
		sub, ch := subscribe(t, cfg, b.group, b.topic)
		// What the closed subscription gave back comes at once, what the
		// departed consumer holds once it has been pending for AckTimeout.
		requireInOrder(t, b.msgs[:redisInFlight], collect(ch, redisInFlight, receiveTimeout))
		claimed := next(t, ch, receiveTimeout)
		require.GreaterOrEqual(t, time.Since(departed), cfg.AckTimeout)
		require.True(t, claimed.Ack())
		got := append([]*message.Message{claimed}, collect(ch, redisBacklog-redisInFlight-1, receiveTimeout)...)
		requireInOrder(t, b.msgs[redisInFlight:], got)
		closeWithin(t, "claiming subscriber", sub, closeTimeout)
		b.requirePending(t, 0)
	})
}

// redisBundle is a Redis subscription with InFlight set, and the backlog
// published to its topic.
type redisBundle struct {
	cfg   broker.Config
	group string
	topic string
	pub   message.Publisher
	sub   message.Subscriber
	ch    <-chan *message.Message
	msgs  []*message.Message
}

// setupRedis subscribes a group to a topic of its own with InFlight set,
// the subscription ending with ctx, and publishes the backlog.
func setupRedis(t *testing.T, ctx context.Context) *redisBundle {
	t.Helper()
	b := &redisBundle{cfg: transportConfig(t, broker.KindRedis), group: "in-flight"}
	b.cfg.InFlight = redisInFlight
	b.topic = uniqueTopic(t, b.cfg, b.group)
	sub, err := broker.NewSubscriber(context.Background(), b.cfg, b.group)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	b.sub = sub
	b.ch, err = sub.Subscribe(ctx, b.topic)
	require.NoError(t, err)
	b.pub = newPublisher(t, b.cfg)
	b.msgs = make([]*message.Message, redisBacklog)
	for i := range b.msgs {
		b.msgs[i] = sample(i, fmt.Sprintf("key-%d", i%3))
	}
	publishAll(t, b.pub, b.topic, b.msgs, redisBacklog)
	return b
}

// receive returns the first n messages of the backlog, in order, without
// answering them.
func (b *redisBundle) receive(t *testing.T, n int) []*message.Message {
	t.Helper()
	held := make([]*message.Message, n)
	for i := range held {
		held[i] = next(t, b.ch, receiveTimeout)
		requireIntact(t, b.msgs[i], held[i])
	}
	return held
}

// client is a client of the bundle's Redis of its own.
func (b *redisBundle) client(t *testing.T) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(b.cfg.URL)
	require.NoError(t, err)
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// requirePending fails unless the group has n messages pending on the
// topic.
func (b *redisBundle) requirePending(t *testing.T, n int64) {
	t.Helper()
	pending, err := b.client(t).XPending(context.Background(), b.topic, b.group).Result()
	require.NoError(t, err)

	require.Equal(t, n, pending.Count, "pending messages of group %s", b.group)
}
