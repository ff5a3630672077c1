package nestjs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// rmqChannels bounds the channels an rmqSender keeps open: each carries one
// unconfirmed event at a time, so this many events are confirmed at once.
const rmqChannels = 16

// rmqSender sends each event to the consumers' queue through the default
// exchange, as ClientRMQ.emit does (sendToQueue), but persistent and
// mandatory, and waits for RabbitMQ's publisher confirm. A channel has one
// event in flight at a time, so a returned message (no queue took it) is
// told apart from the confirm that follows it. A lost connection is dialled
// again by the next send.
type rmqSender struct {
	url    string
	queue  string
	logger *slog.Logger

	idle  chan *confirmChannel
	slots chan struct{} // one per open channel, idle or in use

	mu   sync.Mutex
	conn *amqp091.Connection
}

// confirmChannel is a channel in confirm mode with its returned messages.
type confirmChannel struct {
	ch      *amqp091.Channel
	returns chan amqp091.Return
}

func newRMQSender(ctx context.Context, cfg Config, logger *slog.Logger) (*rmqSender, error) {
	s := &rmqSender{
		url:    cfg.URL,
		queue:  cfg.Queue,
		logger: logger,
		idle:   make(chan *confirmChannel, rmqChannels),
		slots:  make(chan struct{}, rmqChannels),
	}
	// Connect and declare now, so that an unreachable RabbitMQ or a queue
	// declared otherwise fails the start.
	cc, err := s.get(ctx)
	if err != nil {
		_ = s.close()
		return nil, err
	}
	s.put(cc, true)
	return s, nil
}

func (s *rmqSender) send(ctx context.Context, o outgoing) error {
	cc, err := s.get(ctx)
	if err != nil {
		return err
	}
	reuse := false
	defer func() { s.put(cc, reuse) }()
	dc, err := cc.ch.PublishWithDeferredConfirmWithContext(ctx, "", s.queue, true, false, amqp091.Publishing{
		ContentType:  "application/json",
		DeliveryMode: amqp091.Persistent,
		MessageId:    o.messageID,
		Body:         o.packet(),
	})
	if err != nil {
		return fmt.Errorf("publish to RabbitMQ queue %s: %w", s.queue, err)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		// The confirm may still come: the channel cannot be reused.
		return fmt.Errorf("wait for RabbitMQ to confirm: %w", err)
	}
	// RabbitMQ sends a return before the confirm of the same message, and
	// amqp091 hands both over in that order.
	select {
	case r := <-cc.returns:
		// The queue is gone; a new channel declares it again.
		return fmt.Errorf("RabbitMQ returned the event: no queue %s took it (%d %s)", s.queue, r.ReplyCode, r.ReplyText)
	default:
	}
	reuse = true
	if !acked {
		return fmt.Errorf("RabbitMQ refused the event (nack) for queue %s", s.queue)
	}
	return nil
}

// get returns an idle channel, or opens one while fewer than rmqChannels
// are open, or waits for one.
func (s *rmqSender) get(ctx context.Context) (*confirmChannel, error) {
	select {
	case cc := <-s.idle:
		return cc, nil
	default:
	}
	select {
	case cc := <-s.idle:
		return cc, nil
	case s.slots <- struct{}{}:
		cc, err := s.open()
		if err != nil {
			<-s.slots
			return nil, err
		}
		return cc, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put makes cc idle again, or closes it.
func (s *rmqSender) put(cc *confirmChannel, reuse bool) {
	if reuse && !cc.ch.IsClosed() {
		s.idle <- cc
		return
	}
	_ = cc.ch.Close()
	<-s.slots
}

// open opens a channel in confirm mode on the connection, dialling it
// first if it is lost, and declares the queue on it.
func (s *rmqSender) open() (*confirmChannel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil || s.conn.IsClosed() {
		if s.conn != nil {
			s.logger.Warn("RabbitMQ connection lost; dialling again")
		}
		conn, err := rmqDial(s.url, "nestjs emitter")
		if err != nil {
			return nil, err
		}
		s.conn = conn
	}
	ch, err := s.conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open a RabbitMQ channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("put the RabbitMQ channel in confirm mode: %w", err)
	}
	if err := rmqDeclare(ch, s.queue); err != nil {
		// A refused declaration closes the channel.
		return nil, err
	}
	return &confirmChannel{ch: ch, returns: ch.NotifyReturn(make(chan amqp091.Return, 1))}, nil
}

func (s *rmqSender) close() error {
drain:
	for {
		select {
		case cc := <-s.idle:
			_ = cc.ch.Close()
		default:
			break drain
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	if errors.Is(err, amqp091.ErrClosed) {
		return nil
	}
	return err
}
