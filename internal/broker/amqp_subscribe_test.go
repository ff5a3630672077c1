package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
)

// amqpInFlight is Config.InFlight in the tests of the RabbitMQ
// subscription; amqpBacklog messages are published, twice as many.
const (
	amqpInFlight = 16
	amqpBacklog  = 2 * amqpInFlight
)

// TestAMQPSubscriptionHandsOnInFlight checks that a RabbitMQ subscription
// hands on Config.InFlight messages before the first is answered, in
// delivery order, and that each is answered on its own: a nacked one comes
// back, an acked one never does, and what is in hand when the subscription
// ends or its connection is lost goes back to the group.
func TestAMQPSubscriptionHandsOnInFlight(t *testing.T) {
	t.Parallel()
	t.Run("InFlightBeforeTheFirstIsAnswered", func(t *testing.T) {
		t.Parallel()
		b := setupAMQP(t)
		held := b.receive(t, amqpInFlight)
		// Only a missed bug, never a correct subscription, can make this
		// pass wrongly.
		select {
		case msg := <-b.ch:
			require.FailNow(t, "more than InFlight unanswered", "got %s while %d were in hand", msg.UUID, len(held))
		case <-time.After(200 * time.Millisecond):
		}
		// Each answer frees one slot: the next message comes.
		require.True(t, held[0].Ack())
		requireIntact(t, b.msgs[amqpInFlight], next(t, b.ch, receiveTimeout))
		for _, msg := range held[1:] {
			require.True(t, msg.Ack())
		}
		rest := collect(b.ch, amqpBacklog-amqpInFlight-1, receiveTimeout)
		requireInOrder(t, b.msgs[amqpInFlight+1:], rest)
		closeWithin(t, "subscriber", b.sub, closeTimeout)
		requireClosed(t, b.ch, closeTimeout)
		require.NoError(t, b.sub.Close(), "second Close")
	})
	t.Run("NackedComesBackAckedDoesNot", func(t *testing.T) {
		t.Parallel()
		b := setupAMQP(t)
		held := b.receive(t, amqpInFlight)
		require.True(t, held[3].Nack())
		// Requeued to its place, ahead of what the queue still holds.
		again := next(t, b.ch, receiveTimeout)
		requireIntact(t, b.msgs[3], again)
		require.True(t, wmamqp.IsMessageRedelivered(again))
		require.True(t, again.Ack())
		for i, msg := range held {
			require.False(t, wmamqp.IsMessageRedelivered(msg))
			if i != 3 {
				require.True(t, msg.Ack())
			}
		}
		requireInOrder(t, b.msgs[amqpInFlight:], collect(b.ch, amqpBacklog-amqpInFlight, receiveTimeout))
		closeWithin(t, "subscriber", b.sub, closeTimeout)

		// Every ack reached RabbitMQ before the channel closed: the group's
		// next delivery is a message published afterwards.
		sentinel := sample(amqpBacklog, "k")
		require.NoError(t, b.pub.Publish(b.topic, sentinel))
		_, ch := subscribe(t, b.cfg, b.group, b.topic)
		requireIntact(t, sentinel, next(t, ch, receiveTimeout))
	})
	t.Run("CloseGivesBackWhatIsInHand", func(t *testing.T) {
		t.Parallel()
		b := setupAMQP(t)
		b.receive(t, amqpInFlight)
		closeWithin(t, "subscriber", b.sub, closeTimeout)
		requireClosed(t, b.ch, closeTimeout)
		_, ch := subscribe(t, b.cfg, b.group, b.topic)
		requireRedelivered(t, b.msgs, collect(ch, amqpBacklog, receiveTimeout))
	})
	t.Run("EndOfContextGivesBackWhatIsInHand", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		b := setupAMQPWithContext(t, ctx)
		b.receive(t, amqpInFlight)
		cancel()
		requireClosed(t, b.ch, closeTimeout)
		_, again := subscribe(t, b.cfg, b.group, b.topic)
		requireRedelivered(t, b.msgs, collect(again, amqpBacklog, receiveTimeout))
	})
	t.Run("LostConnectionIsDialledAgain", func(t *testing.T) {
		t.Parallel()
		b := setupAMQP(t)
		held := b.receive(t, amqpInFlight)
		require.NoError(t, broker.DropAMQPConnection(b.sub))
		// Their deliveries can no longer be answered: the consumer is told,
		// and an ack now goes nowhere (delivery tags are per channel).
		for _, msg := range held {
			select {
			case <-msg.Context().Done():
			case <-time.After(receiveTimeout):
				require.FailNow(t, "context not ended", "message %s of a lost channel", msg.UUID)
			}
			require.True(t, msg.Ack())
		}
		requireRedelivered(t, b.msgs, collect(b.ch, amqpBacklog, receiveTimeout))
		closeWithin(t, "subscriber", b.sub, closeTimeout)
		requireClosed(t, b.ch, closeTimeout)
	})
}

// amqpBundle is a RabbitMQ subscription with InFlight set, and the
// backlog published to its topic.
type amqpBundle struct {
	cfg   broker.Config
	group string
	topic string
	pub   message.Publisher
	sub   message.Subscriber
	ch    <-chan *message.Message
	msgs  []*message.Message
}

func setupAMQP(t *testing.T) *amqpBundle {
	t.Helper()
	return setupAMQPWithContext(t, context.Background())
}

// setupAMQPWithContext is setupAMQP with a subscription that ends with
// ctx.
func setupAMQPWithContext(t *testing.T, ctx context.Context) *amqpBundle {
	t.Helper()
	b := &amqpBundle{cfg: transportConfig(t, broker.KindAMQP), group: "in-flight"}
	b.cfg.InFlight = amqpInFlight
	b.topic = uniqueTopic(t, b.cfg, b.group)
	sub, err := broker.NewSubscriber(context.Background(), b.cfg, b.group)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	b.sub = sub
	b.ch, err = sub.Subscribe(ctx, b.topic)
	require.NoError(t, err)
	b.pub = newPublisher(t, b.cfg)
	b.msgs = make([]*message.Message, amqpBacklog)
	for i := range b.msgs {
		b.msgs[i] = sample(i, fmt.Sprintf("key-%d", i%3))
	}
	publishAll(t, b.pub, b.topic, b.msgs, amqpBacklog)
	return b
}

// receive returns the first n messages of the backlog, in order, without
// answering them.
func (b *amqpBundle) receive(t *testing.T, n int) []*message.Message {
	t.Helper()
	held := make([]*message.Message, n)
	for i := range held {
		held[i] = next(t, b.ch, receiveTimeout)
		requireIntact(t, b.msgs[i], held[i])
	}
	return held
}

// transportConfig is the config of kind's transport in transports.
func transportConfig(t *testing.T, kind broker.Kind) broker.Config {
	t.Helper()
	for _, tr := range transports() {
		if tr.kind == kind {
			return tr.config(t)
		}
	}
	require.FailNow(t, "no transport", "kind %s", kind)
	return broker.Config{}
}

// requireInOrder fails unless got is want, intact and in order.
func requireInOrder(t *testing.T, want, got []*message.Message) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		requireIntact(t, want[i], got[i])
	}
}

// requireRedelivered fails unless got is the backlog want in order, its
// first amqpInFlight messages, which a member held, marked redelivered.
func requireRedelivered(t *testing.T, want, got []*message.Message) {
	t.Helper()
	requireInOrder(t, want, got)
	for i, msg := range got {
		require.Equal(t, i < amqpInFlight, wmamqp.IsMessageRedelivered(msg), "message %d redelivered", i)
	}
}
