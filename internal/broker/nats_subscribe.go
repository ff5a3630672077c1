package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
)

// natsSubscriber reads a group's durable push consumer through a
// synchronous queue subscription, one goroutine per Subscribe that owns
// its output channel: watermill-nats closes its channel from another
// goroutine than the nats.go callback sending on it, without waiting for
// the callback, a race that can end in a send on a closed channel. Messages
// are watermill-nats' (NATSMarshaler), handed on in delivery order, up to
// inFlight of them unanswered at once, each acked explicitly.
type natsSubscriber struct {
	nc       *nats.Conn
	js       nats.JetStreamContext
	group    string
	ackWait  time.Duration
	inFlight int
	logger   watermill.LoggerAdapter

	subscriptions
}

// Subscribe binds to the group's consumer on topic, which prepare has
// created.
func (s *natsSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.subscribe(ctx, func() (handOnFunc, error) {
		sub, err := s.js.QueueSubscribeSync(topic, s.group, nats.Bind(natsStreamName(topic), s.group), nats.ManualAck())
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, out chan<- *message.Message) { s.consume(ctx, sub, out) }, nil
	})
}

// consume hands on sub's messages until ctx ends, then unsubscribes.
func (s *natsSubscriber) consume(ctx context.Context, sub *nats.Subscription, out chan<- *message.Message) {
	// Unsubscribing leaves the durable consumer, which outboxd created,
	// in place.
	defer func() { _ = sub.Unsubscribe() }()
	// The answers go out before the subscription ends and Close closes the
	// connection.
	slots := newAnswerSlots(s.inFlight)
	defer slots.wait()
	for {
		if !slots.take(ctx) {
			return
		}
		m, err := sub.NextMsgWithContext(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, nats.ErrBadSubscription) || errors.Is(err, nats.ErrConnectionClosed):
			s.logger.Error("Subscription ended", err, nil)
			return
		case err != nil:
			// A slow consumer's dropped messages come again after AckWait.
			s.logger.Error("Cannot read message", err, nil)
			slots.release()
			continue
		}
		msg, cancel, ok := s.handOn(ctx, m, out)
		if !ok {
			slots.release()
			continue
		}
		slots.answer(func() { s.answer(ctx, m, msg, cancel) })
	}
}

// handOn unmarshals m and hands it on; ok is false when m was answered
// already (terminated as unreadable, or nacked as the subscription ends).
// cancel ends the message's context.
func (s *natsSubscriber) handOn(ctx context.Context, m *nats.Msg, out chan<- *message.Message) (msg *message.Message, cancel context.CancelFunc, ok bool) {
	msg, err := natsMarshaler.Unmarshal(m)
	if err != nil {
		s.logger.Error("Cannot unmarshal message", err, nil)
		_ = m.Term()
		return nil, nil, false
	}
	msgCtx, cancel := context.WithCancel(ctx)
	msg.SetContext(msgCtx)
	select {
	case out <- msg:
		return msg, cancel, true
	case <-ctx.Done():
		cancel()
		_ = m.Nak()
		return nil, nil, false
	}
}

// answer answers the server as the consumer answers msg, then ends its
// context: a message left unanswered when the subscription ends is nacked,
// back to the group at once.
func (s *natsSubscriber) answer(ctx context.Context, m *nats.Msg, msg *message.Message, cancel context.CancelFunc) {
	defer cancel()
	// After AckWait the server has given it to the group again.
	expired := time.NewTimer(s.ackWait)
	defer expired.Stop()
	select {
	case <-msg.Acked():
		// Not AckSync: waiting for the server's answer costs a round trip
		// a message, and Close flushes the connection before it closes it.
		// An ack lost on the way means a redelivery, as an ack sent just
		// before a crash does.
		if err := m.Ack(); err != nil {
			s.logger.Error("Cannot send ack", err, watermill.LogFields{"message_uuid": msg.UUID})
		}
	case <-msg.Nacked():
		_ = m.Nak()
	case <-expired.C:
	case <-ctx.Done():
		_ = m.Nak()
	}
}

// Close ends every subscription, nacking the messages in hand, and closes
// the connection once the answers are sent.
func (s *natsSubscriber) Close() error {
	if !s.closeAll() {
		return nil
	}
	err := s.nc.FlushTimeout(time.Second)
	s.nc.Close()
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("flush answers: %w", err)
	}
	return nil
}
