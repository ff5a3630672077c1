package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
// are watermill-nats' (NATSMarshaler), acked explicitly, one at a time.
type natsSubscriber struct {
	nc      *nats.Conn
	js      nats.JetStreamContext
	group   string
	ackWait time.Duration
	logger  watermill.LoggerAdapter

	mu      sync.Mutex // guards closed against wg.Add
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup
}

var errSubscriberClosed = errors.New("subscriber closed")

// Subscribe binds to the group's consumer on topic, which prepare has
// created.
func (s *natsSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errSubscriberClosed
	}
	sub, err := s.js.QueueSubscribeSync(topic, s.group, nats.Bind(natsStreamName(topic), s.group), nats.ManualAck())
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	s.wg.Add(1)
	go s.consume(ctx, sub, out)
	return out, nil
}

func (s *natsSubscriber) consume(ctx context.Context, sub *nats.Subscription, out chan<- *message.Message) {
	defer s.wg.Done()
	defer close(out)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	// Unsubscribing leaves the durable consumer, which outboxd created,
	// in place.
	defer func() { _ = sub.Unsubscribe() }()
	for {
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
			continue
		}
		s.handle(ctx, m, out)
	}
}

// handle hands m on and answers the server as the consumer answers m: a
// message left unanswered when the subscription ends is nacked, back to the
// group at once.
func (s *natsSubscriber) handle(ctx context.Context, m *nats.Msg, out chan<- *message.Message) {
	msg, err := natsMarshaler.Unmarshal(m)
	if err != nil {
		s.logger.Error("Cannot unmarshal message", err, nil)
		_ = m.Term()
		return
	}
	msgCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	msg.SetContext(msgCtx)
	select {
	case out <- msg:
	case <-ctx.Done():
		_ = m.Nak()
		return
	}
	// After AckWait the server has given it to the group again.
	expired := time.NewTimer(s.ackWait)
	defer expired.Stop()
	select {
	case <-msg.Acked():
		if err := m.AckSync(); err != nil {
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
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.wg.Wait()
	err := s.nc.FlushTimeout(time.Second)
	s.nc.Close()
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("flush answers: %w", err)
	}
	return nil
}
