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

// inFlight is Config.InFlight in the tests of the subscriptions that
// honour it; backlog messages are published, twice as many.
const (
	inFlight = 16
	backlog  = 2 * inFlight
)

// inFlightTransport is a transport whose subscriptions hand on
// Config.InFlight messages before the first is answered, with what the
// checks need to know of it.
type inFlightTransport struct {
	kind Kind
	// givesBackInOrder tells that a message nacked, or in hand when a
	// subscription ends, comes back at once, ahead of what the group has
	// not had yet and in delivery order. Not so on NATS, which redelivers
	// in the order the naks arrive: only the first check runs there.
	givesBackInOrder bool
	// redelivered reads the transport's mark on a message delivered
	// before; nil where there is none.
	redelivered func(*message.Message) bool
	// requireAllAcked fails unless the broker holds none of b's group's
	// messages unacked; nil where it cannot tell at once.
	requireAllAcked func(t *testing.T, b *inFlightBundle)
}

func inFlightTransports() []inFlightTransport {
	return []inFlightTransport{
		{kind: broker.KindNATS},
		{kind: broker.KindAMQP, givesBackInOrder: true, redelivered: wmamqp.IsMessageRedelivered},
		{kind: broker.KindRedis, givesBackInOrder: true, requireAllAcked: requireNonePending},
		{kind: broker.KindPostgres, givesBackInOrder: true, requireAllAcked: requireOffsetAtEnd},
	}
}

// TestSubscriptionHandsOnInFlight checks, on each transport of
// inFlightTransports, that a subscription hands on Config.InFlight
// messages before the first is answered, in delivery order, and that each
// is answered on its own: a nacked one comes back, an acked one never
// does, and what is in hand when the subscription ends goes back to the
// group at once (on Redis, not after Config.AckTimeout). What a lost
// RabbitMQ connection and a departed Redis consumer leave are tested in
// amqp_subscribe_test.go and redis_subscribe_test.go, what a PostgreSQL
// subscription ending with a batch half acked leaves in
// postgres_subscribe_test.go.
func TestSubscriptionHandsOnInFlight(t *testing.T) {
	t.Parallel()
	for _, tr := range inFlightTransports() {
		t.Run(string(tr.kind), func(t *testing.T) {
			t.Parallel()
			t.Run("InFlightBeforeTheFirstIsAnswered", func(t *testing.T) {
				t.Parallel()
				b := setupInFlight(t, tr.kind, context.Background())
				held := b.receive(t, inFlight)
				// Only a missed bug, never a correct subscription, can make
				// this pass wrongly.
				select {
				case msg := <-b.ch:
					require.FailNow(t, "more than InFlight unanswered", "got %s while %d were in hand", msg.UUID, len(held))
				case <-time.After(200 * time.Millisecond):
				}
				// Each answer frees one slot: the next message comes.
				require.True(t, held[0].Ack())
				more := next(t, b.ch, receiveTimeout)
				requireIntact(t, b.msgs[inFlight], more)
				require.True(t, more.Ack())
				for _, msg := range held[1:] {
					require.True(t, msg.Ack())
				}
				rest := collect(b.ch, backlog-inFlight-1, receiveTimeout)
				requireInOrder(t, b.msgs[inFlight+1:], rest)
				closeWithin(t, "subscriber", b.sub, closeTimeout)
				requireClosed(t, b.ch, closeTimeout)
				require.NoError(t, b.sub.Close(), "second Close")
				b.requireAllAcked(t)
			})
			if !tr.givesBackInOrder {
				return
			}
			t.Run("NackedComesBackAckedDoesNot", func(t *testing.T) {
				t.Parallel()
				b := setupInFlight(t, tr.kind, context.Background())
				held := b.receive(t, inFlight)
				require.True(t, held[3].Nack())
				// Back in its place, ahead of what the broker still holds.
				again := next(t, b.ch, receiveTimeout)
				requireIntact(t, b.msgs[3], again)
				b.requireRedelivered(t, again, true)
				require.True(t, again.Ack())
				for i, msg := range held {
					b.requireRedelivered(t, msg, false)
					if i != 3 {
						require.True(t, msg.Ack())
					}
				}
				requireInOrder(t, b.msgs[inFlight:], collect(b.ch, backlog-inFlight, receiveTimeout))
				closeWithin(t, "subscriber", b.sub, closeTimeout)
				b.requireAllAcked(t)

				// Every ack reached the broker before Close returned: the
				// group's next delivery is a message published afterwards.
				sentinel := sample(backlog, "k")
				require.NoError(t, b.pub.Publish(b.topic, sentinel))
				_, ch := subscribe(t, b.cfg, b.group, b.topic)
				requireIntact(t, sentinel, next(t, ch, receiveTimeout))
			})
			t.Run("CloseGivesBackWhatIsInHand", func(t *testing.T) {
				t.Parallel()
				b := setupInFlight(t, tr.kind, context.Background())
				b.receive(t, inFlight)
				closeWithin(t, "subscriber", b.sub, closeTimeout)
				requireClosed(t, b.ch, closeTimeout)
				// Well within AckTimeout, after which any consumer would
				// claim them anyway on Redis.
				_, ch := subscribe(t, b.cfg, b.group, b.topic)
				b.requireGivenBack(t, collect(ch, backlog, receiveTimeout))
			})
			t.Run("EndOfContextGivesBackWhatIsInHand", func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithCancel(context.Background())
				b := setupInFlight(t, tr.kind, ctx)
				b.receive(t, inFlight)
				cancel()
				requireClosed(t, b.ch, closeTimeout)
				_, again := subscribe(t, b.cfg, b.group, b.topic)
				b.requireGivenBack(t, collect(again, backlog, receiveTimeout))
			})
		})
	}
}

// inFlightBundle is a subscription with InFlight set, and the backlog
// published to its topic.
type inFlightBundle struct {
	tr    inFlightTransport
	cfg   broker.Config
	group string
	topic string
	pub   message.Publisher
	sub   message.Subscriber
	ch    <-chan *message.Message
	msgs  []*message.Message
}

// setupInFlight subscribes a group to a topic of its own on kind's
// transport with InFlight set, the subscription ending with ctx, and
// publishes the backlog.
func setupInFlight(t *testing.T, kind Kind, ctx context.Context) *inFlightBundle {
	t.Helper()
	b := &inFlightBundle{tr: inFlightTransportOf(t, kind), cfg: transportConfig(t, kind), group: "in-flight"}
	b.cfg.InFlight = inFlight
	b.topic = uniqueTopic(t, b.cfg, b.group)
	sub, err := broker.NewSubscriber(context.Background(), b.cfg, b.group)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	b.sub = sub
	b.ch, err = sub.Subscribe(ctx, b.topic)
	require.NoError(t, err)
	b.pub = newPublisher(t, b.cfg)
	b.msgs = make([]*message.Message, backlog)
	for i := range b.msgs {
		b.msgs[i] = sample(i, fmt.Sprintf("key-%d", i%3))
	}
	publishAll(t, b.pub, b.topic, b.msgs, backlog)
	return b
}

// receive returns the first n messages of the backlog, in order, without
// answering them.
func (b *inFlightBundle) receive(t *testing.T, n int) []*message.Message {
	t.Helper()
	held := make([]*message.Message, n)
	for i := range held {
		held[i] = next(t, b.ch, receiveTimeout)
		requireIntact(t, b.msgs[i], held[i])
	}
	return held
}

// requireRedelivered fails unless msg is marked redelivered, or not, as
// want says, where the transport marks redeliveries.
func (b *inFlightBundle) requireRedelivered(t *testing.T, msg *message.Message, want bool) {
	t.Helper()
	if b.tr.redelivered != nil {
		require.Equal(t, want, b.tr.redelivered(msg), "message %s redelivered", msg.UUID)
	}
}

// requireGivenBack fails unless got is the backlog in order, its first
// inFlight messages, which a member held, marked redelivered where the
// transport marks redeliveries.
func (b *inFlightBundle) requireGivenBack(t *testing.T, got []*message.Message) {
	t.Helper()
	requireInOrder(t, b.msgs, got)
	for i, msg := range got {
		b.requireRedelivered(t, msg, i < inFlight)
	}
}

// requireAllAcked fails unless the broker holds none of the group's
// messages unacked, where it can tell.
func (b *inFlightBundle) requireAllAcked(t *testing.T) {
	t.Helper()
	if b.tr.requireAllAcked != nil {
		b.tr.requireAllAcked(t, b)
	}
}

// inFlightTransportOf is kind's entry in inFlightTransports.
func inFlightTransportOf(t *testing.T, kind Kind) inFlightTransport {
	t.Helper()
	for _, tr := range inFlightTransports() {
		if tr.kind == kind {
			return tr
		}
	}
	require.FailNow(t, "no in-flight transport", "kind %s", kind)
	return inFlightTransport{}
}

// transportConfig is the config of kind's transport in transports.
func transportConfig(t *testing.T, kind Kind) broker.Config {
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
