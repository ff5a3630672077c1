package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// The pauses between attempts to consume again after a channel or the
// connection is lost, doubling from the first to the last.
const (
	amqpReconsumeFirstPause = 100 * time.Millisecond
	amqpReconsumeLastPause  = 5 * time.Second
)

// amqpSubscriber consumes a group's queue, one channel and one goroutine
// per Subscribe that owns its output channel: watermill-amqp's subscriber
// waits for each message's answer before it hands on the next. Topology
// (watermill-amqp's TopologyBuilder) and messages (its Marshaler, with its
// redelivery mark) are watermill-amqp's, as amqpConfig sets them up.
// Messages are handed on in delivery order, up to inFlight of them
// unanswered at once, each acked on its own. The connection is the
// subscriber's own, dialled again when lost: watermill-amqp's
// ConnectionWrapper swaps its fields without a lock as it reconnects.
type amqpSubscriber struct {
	config   wmamqp.Config
	inFlight int
	logger   watermill.LoggerAdapter

	connMu sync.Mutex // guards conn
	conn   *amqp091.Connection

	// Dialling is left to Subscribe and SubscribeInitialize while open,
	// and to subscriptions, which closeAll waits for: Close leaves no
	// connection behind.
	subscriptions
}

// amqpConsumer is one channel's consumption of a queue.
type amqpConsumer struct {
	ch         *amqp091.Channel
	deliveries <-chan amqp091.Delivery
	// lost is closed once ch is (amqp091 may send the reason first): its
	// deliveries can no longer be answered, and RabbitMQ has given them to
	// the group again. Delivery tags are per channel, so Ack and Nack of a
	// delivery always go to the channel it came on.
	lost <-chan *amqp091.Error
}

// Subscribe declares the group's queue on topic, bound to the topic's
// exchange, and consumes it until ctx ends or Close.
func (s *amqpSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.subscribe(ctx, func() (handOnFunc, error) {
		params := s.topology(topic)
		c, err := s.consume(params)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, out chan<- *message.Message) { s.run(ctx, params, c, out) }, nil
	})
}

// SubscribeInitialize declares the group's queue on topic, bound to the
// topic's exchange, so that it keeps what is published before Subscribe.
func (s *amqpSubscriber) SubscribeInitialize(topic string) error {
	return s.whileOpen(func() error {
		conn, err := s.connection()
		if err != nil {
			return err
		}
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("open channel: %w", err)
		}
		defer func() { _ = ch.Close() }()
		return s.declare(ch, s.topology(topic))
	})
}

func (s *amqpSubscriber) topology(topic string) wmamqp.BuildTopologyParams {
	return wmamqp.BuildTopologyParams{
		Topic:        topic,
		QueueName:    s.config.Queue.GenerateName(topic),
		ExchangeName: s.config.Exchange.GenerateName(topic),
		RoutingKey:   s.config.QueueBind.GenerateRoutingKey(topic),
	}
}

func (s *amqpSubscriber) declare(ch *amqp091.Channel, params wmamqp.BuildTopologyParams) error {
	if err := s.config.TopologyBuilder.BuildTopology(ch, params, s.config, s.logger); err != nil {
		return fmt.Errorf("declare queue %s bound to exchange %s: %w", params.QueueName, params.ExchangeName, err)
	}
	return nil
}

// connection is the subscriber's connection, dialled again if it was lost.
func (s *amqpSubscriber) connection() (*amqp091.Connection, error) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.conn != nil && !s.conn.IsClosed() {
		return s.conn, nil
	}
	// amqp091's dial errors name the host, never the URL's password.
	conn, err := amqp091.Dial(s.config.Connection.AmqpURI)
	if err != nil {
		return nil, fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	s.conn = conn
	return conn, nil
}

// consume opens a channel that RabbitMQ may hand the prefetch count of
// unacked messages, declares params' topology on it and starts consuming
// the queue.
func (s *amqpSubscriber) consume(params wmamqp.BuildTopologyParams) (*amqpConsumer, error) {
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	c := &amqpConsumer{ch: ch, lost: ch.NotifyClose(make(chan *amqp091.Error, 1))}
	fail := func(err error) (*amqpConsumer, error) {
		_ = ch.Close()
		return nil, err
	}
	qos := s.config.Consume.Qos
	if err := ch.Qos(qos.PrefetchCount, qos.PrefetchSize, qos.Global); err != nil {
		return fail(fmt.Errorf("set prefetch count %d: %w", qos.PrefetchCount, err))
	}
	if err := s.declare(ch, params); err != nil {
		return fail(err)
	}
	cc := s.config.Consume
	c.deliveries, err = ch.Consume(params.QueueName, cc.Consumer, false, cc.Exclusive, cc.NoLocal, cc.NoWait, cc.Arguments)
	if err != nil {
		return fail(fmt.Errorf("consume queue %s: %w", params.QueueName, err))
	}
	return c, nil
}

// reason is what closed c's channel, once it is closed.
func (c *amqpConsumer) reason() error {
	if err := <-c.lost; err != nil {
		return err
	}
	return errors.New("consumer cancelled or channel closed")
}

// run hands on c's deliveries until ctx ends or Close, consuming again on a
// new channel when c's is lost.
func (s *amqpSubscriber) run(ctx context.Context, params wmamqp.BuildTopologyParams, c *amqpConsumer, out chan<- *message.Message) {
	fields := watermill.LogFields{"topic": params.Topic, "amqp_queue_name": params.QueueName}
	// The answers go out before the channel closes; closing it gives the
	// deliveries not handed on back to the queue.
	slots := newAnswerSlots(s.inFlight)
	defer func() {
		slots.wait()
		if c != nil {
			_ = c.ch.Close()
		}
	}()
	for {
		if !slots.take(ctx) {
			return
		}
		var (
			d  amqp091.Delivery
			ok bool
		)
		select {
		case d, ok = <-c.deliveries:
		case <-ctx.Done():
			return
		}
		if !ok {
			slots.release()
			// Closing the channel after the server cancelled the consumer
			// (its queue deleted) ends it; otherwise it is closed already.
			_ = c.ch.Close()
			s.logger.Error("Channel closed, consuming again", c.reason(), fields)
			if c = s.reconsume(ctx, params, fields); c == nil {
				return
			}
			continue
		}
		msg, msgCancel, ok := s.handOn(ctx, c, d, out, fields)
		if !ok {
			slots.release()
			continue
		}
		from := c // d's, whatever run consumes from later
		slots.answer(func() { s.answer(ctx, from, d, msg, msgCancel) })
	}
}

// reconsume consumes params' queue on a new channel, dialling again if the
// connection is lost, with a pause growing between attempts; nil once ctx
// ends.
func (s *amqpSubscriber) reconsume(ctx context.Context, params wmamqp.BuildTopologyParams, fields watermill.LogFields) *amqpConsumer {
	pause := amqpReconsumeFirstPause
	for {
		c, err := s.consume(params)
		if err == nil {
			s.logger.Info("Consuming again", fields)
			return c
		}
		s.logger.Error("Cannot consume again, will retry", err, fields.Add(watermill.LogFields{"retry_in": pause}))
		retry := time.NewTimer(pause)
		select {
		case <-retry.C:
		case <-ctx.Done():
			retry.Stop()
			return nil
		}
		pause = min(2*pause, amqpReconsumeLastPause)
	}
}

// handOn unmarshals d and hands it on; ok is false when d was answered
// already (dropped as unreadable, or nacked as the subscription ends) or
// its channel is lost. cancel ends the message's context.
func (s *amqpSubscriber) handOn(ctx context.Context, c *amqpConsumer, d amqp091.Delivery, out chan<- *message.Message, fields watermill.LogFields) (msg *message.Message, cancel context.CancelFunc, ok bool) {
	msg, err := s.config.Marshaler.Unmarshal(d)
	if err != nil {
		// No member of the group could read it: requeued, it would come
		// back at once, for ever. Rejected, it goes to the queue's
		// dead-letter exchange if it has one.
		s.logger.Error("Cannot unmarshal message, rejecting it", err, fields)
		if err := d.Nack(false, false); err != nil {
			s.logger.Error("Cannot reject message", err, fields)
		}
		return nil, nil, false
	}
	if d.Redelivered {
		msg.Metadata.Set(wmamqp.MetadataRedeliveredKey, "true")
	}
	msgCtx, cancel := context.WithCancel(ctx)
	msg.SetContext(msgCtx)
	select {
	case out <- msg:
		return msg, cancel, true
	case <-ctx.Done():
		cancel()
		s.nack(d, msg)
		return nil, nil, false
	case <-c.lost:
		cancel()
		return nil, nil, false
	}
}

// answer answers RabbitMQ as the consumer answers msg, then ends its
// context: a message left unanswered when the subscription ends is nacked,
// back to the queue at once.
func (s *amqpSubscriber) answer(ctx context.Context, c *amqpConsumer, d amqp091.Delivery, msg *message.Message, cancel context.CancelFunc) {
	defer cancel()
	select {
	case <-msg.Acked():
		s.ack(d, msg)
	case <-msg.Nacked():
		s.nack(d, msg)
	case <-c.lost:
		// RabbitMQ has given it to the group again.
	case <-ctx.Done():
		select {
		case <-msg.Acked():
			s.ack(d, msg)
		default:
			s.nack(d, msg)
		}
	}
}

// ack sends d's ack without waiting for the server (AMQP 0.9.1 has no
// answer to one): Close closes the channel, which the server answers once
// it has taken the acks sent before. An ack lost on the way means a
// redelivery, as an ack sent just before a crash does.
func (s *amqpSubscriber) ack(d amqp091.Delivery, msg *message.Message) {
	s.answered("ack", d.Ack(false), msg)
}

// nack gives d back to the queue (unless the config says
// NoRequeueOnNack), to be delivered again.
func (s *amqpSubscriber) nack(d amqp091.Delivery, msg *message.Message) {
	s.answered("nack", d.Nack(false, !s.config.Consume.NoRequeueOnNack), msg)
}

// answered logs what kept an answer to msg from being sent, if anything.
func (s *amqpSubscriber) answered(answer string, err error, msg *message.Message) {
	fields := watermill.LogFields{"message_uuid": msg.UUID}
	switch {
	case err == nil:
	case errors.Is(err, amqp091.ErrClosed):
		// The channel is lost; RabbitMQ delivers the message again.
		s.logger.Info("Cannot send "+answer+", channel closed", fields)
	default:
		s.logger.Error("Cannot send "+answer, err, fields)
	}
}

// Close ends every subscription, nacking the messages in hand, and closes
// the connection once the answers are sent. It may be called more than
// once.
func (s *amqpSubscriber) Close() error {
	if !s.closeAll() {
		return nil
	}
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.conn == nil {
		return nil
	}
	if err := s.conn.Close(); err != nil && !errors.Is(err, amqp091.ErrClosed) {
		return fmt.Errorf("close connection: %w", err)
	}
	return nil
}
