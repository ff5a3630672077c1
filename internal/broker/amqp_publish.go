package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/outboxd/outboxd/relay"
)

// errAMQPNack is a publisher confirm's negative answer: RabbitMQ did not
// take the message (a queue at its length limit with reject-publish, an
// internal error). Sending it again may succeed.
var errAMQPNack = errors.New("RabbitMQ nacked the message")

// amqpPublisher publishes a run on one channel in confirm mode, every
// message outstanding at once, then waits for each confirm: without
// confirms a publish is done once the bytes are written, and a broker crash
// right then loses messages the relay already deleted. The exchange,
// routing key and marshaling are watermill-amqp's, as its subscriber
// expects; the channels are its connection's, which reconnects by itself.
type amqpPublisher struct {
	conn   *wmamqp.ConnectionWrapper
	config wmamqp.Config
	// idle holds confirm-mode channels between runs.
	idle chan *amqpChannel
	// declared holds the topics whose exchange this publisher declared.
	declared sync.Map
}

// amqpChannel is a channel in confirm mode with what closed it. One run
// at a time uses it.
type amqpChannel struct {
	ch     *amqp091.Channel
	closed chan *amqp091.Error
	// reason is what closed ch, once closeRead.
	reason    *amqp091.Error
	closeRead bool
}

func newAMQPPublisher(cfg Config, logger watermill.LoggerAdapter) (*publisher, error) {
	c := amqpConfig(cfg, "")
	conn, err := wmamqp.NewConnection(c.Connection, logger)
	if err != nil {
		// amqp091's dial errors name the host, never the URL's password.
		return nil, fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	return &publisher{transport: &amqpPublisher{
		conn:   conn,
		config: c,
		idle:   make(chan *amqpChannel, amqpPublishChannels),
	}}, nil
}

func (p *amqpPublisher) channel() (*amqpChannel, error) {
	for {
		select {
		case c := <-p.idle:
			if !c.ch.IsClosed() {
				return c, nil
			}
		default:
			return p.openChannel()
		}
	}
}

func (p *amqpPublisher) openChannel() (*amqpChannel, error) {
	if !p.conn.IsConnected() {
		return nil, errors.New("not connected to RabbitMQ")
	}
	ch, err := p.conn.Connection().Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("confirm mode: %w", err)
	}
	return &amqpChannel{ch: ch, closed: ch.NotifyClose(make(chan *amqp091.Error, 1))}, nil
}

// putBack keeps c for the next run unless it closed or the pool is full.
func (p *amqpPublisher) putBack(c *amqpChannel) {
	if c.ch.IsClosed() {
		return
	}
	select {
	case p.idle <- c:
	default:
		_ = c.ch.Close()
	}
}

func (p *amqpPublisher) publishRun(ctx context.Context, run []relay.Outgoing) []error {
	errs := make([]error, len(run))
	c, err := p.channel()
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	confirms := make([]*amqp091.DeferredConfirmation, len(run))
	for i, o := range run {
		confirms[i], errs[i] = p.send(ctx, c, o)
	}
	abandoned := false
	for i, dc := range confirms {
		if dc == nil {
			continue
		}
		acked, err := dc.WaitContext(ctx)
		switch {
		case err != nil:
			errs[i], abandoned = err, true
		case !acked && c.ch.IsClosed():
			// Closing the channel nacks what it had outstanding.
			errs[i] = p.closedBy(c, run[i].Topic)
		case !acked:
			errs[i] = errAMQPNack
		}
	}
	if abandoned {
		// Confirms still due would come on a channel nobody watches.
		_ = c.ch.Close()
		return errs
	}
	p.putBack(c)
	return errs
}

func (p *amqpPublisher) send(ctx context.Context, c *amqpChannel, o relay.Outgoing) (*amqp091.DeferredConfirmation, error) {
	exchange := p.config.Exchange.GenerateName(o.Topic)
	if _, ok := p.declared.Load(o.Topic); !ok {
		if err := p.config.TopologyBuilder.ExchangeDeclare(c.ch, exchange, p.config); err != nil {
			return nil, fmt.Errorf("declare exchange %s: %w", exchange, err)
		}
		p.declared.Store(o.Topic, struct{}{})
	}
	msg, err := p.config.Marshaler.Marshal(o.Message)
	if err != nil {
		return nil, fmt.Errorf("marshal message %s: %w", o.Message.UUID, err)
	}
	dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, p.config.Publish.GenerateRoutingKey(o.Topic),
		p.config.Publish.Mandatory, p.config.Publish.Immediate, msg)
	if err != nil {
		if c.ch.IsClosed() {
			return nil, p.closedBy(c, o.Topic)
		}
		return nil, fmt.Errorf("publish message %s: %w", o.Message.UUID, err)
	}
	return dc, nil
}

// closedBy is the error of a message that c's closing failed: the
// server's reason when it closed c (an exchange deleted meanwhile, which
// is declared again next time), else the connection's loss.
func (p *amqpPublisher) closedBy(c *amqpChannel, topic string) error {
	if !c.closeRead {
		// amqp091 marks c closed, then sends the server's reason if any,
		// then closes the notification channel: this returns promptly.
		c.reason, c.closeRead = <-c.closed, true
	}
	if c.reason == nil {
		return amqp091.ErrClosed
	}
	if c.reason.Code == amqp091.NotFound {
		p.declared.Delete(topic)
	}
	return fmt.Errorf("channel closed: %w", c.reason)
}

func (p *amqpPublisher) close() error {
	for {
		select {
		case c := <-p.idle:
			_ = c.ch.Close()
		default:
			return p.conn.Close()
		}
	}
}
