package broker

import (
	"context"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// NewPublisher connects to the broker cfg names and returns a Watermill
// publisher for it. Publish returns only once the broker has stored the
// messages (a JetStream ack, a RabbitMQ publisher confirm, a Redis XADD, a
// Kafka ack from all in-sync replicas, a committed INSERT), so a caller that
// deletes its copy afterwards never loses one. Messages given to one Publish
// call are stored in order, and Publish stops at the first failure.
// Publish is safe for concurrent use.
func NewPublisher(ctx context.Context, cfg Config) (message.Publisher, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("broker config: %w", err)
	}
	logger := watermillLogger(cfg)
	var (
		p   *publisher
		err error
	)
	switch cfg.Kind {
	case KindNATS:
		p, err = newNATSPublisher(ctx, cfg, logger)
	case KindAMQP:
		p, err = newAMQPPublisher(cfg, logger)
	case KindRedis:
		p, err = newRedisPublisher(ctx, cfg, logger)
	case KindKafka:
		p, err = newKafkaPublisher(cfg, logger)
	case KindPostgres:
		p, err = newPostgresPublisher(ctx, cfg, logger)
	}
	if err != nil {
		return nil, fmt.Errorf("%s publisher: %w", cfg.Kind, err)
	}
	p.kind = cfg.Kind
	return p, nil
}

// NewSubscriber connects to the broker cfg names and returns a Watermill
// subscriber in the durable consumer group named group: every group receives
// every message of a topic, and the members of one group share them. The
// group's position survives restarts: a message is delivered until a member
// acks it (at-least-once), a nacked one is delivered again. A group that does
// not exist yet starts from the oldest message the broker still holds, except
// on RabbitMQ, where a group's queue only receives messages published after
// its first Subscribe.
func NewSubscriber(ctx context.Context, cfg Config, group string) (message.Subscriber, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("broker config: %w", err)
	}
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	logger := watermillLogger(cfg).With(watermill.LogFields{"group": group})
	var (
		s   *subscriber
		err error
	)
	switch cfg.Kind {
	case KindNATS:
		s, err = newNATSSubscriber(ctx, cfg, group, logger)
	case KindAMQP:
		s, err = newAMQPSubscriber(cfg, group, logger)
	case KindRedis:
		s, err = newRedisSubscriber(ctx, cfg, group, logger)
	case KindKafka:
		s, err = newKafkaSubscriber(cfg, group, logger)
	case KindPostgres:
		s, err = newPostgresSubscriber(ctx, cfg, group, logger)
	}
	if err != nil {
		return nil, fmt.Errorf("%s subscriber for group %s: %w", cfg.Kind, group, err)
	}
	s.kind = cfg.Kind
	return s, nil
}

func watermillLogger(cfg Config) watermill.LoggerAdapter {
	return watermill.NewSlogLogger(cfg.Logger.With("component", "broker", "broker", string(cfg.Kind)))
}

// publisher puts what all transports share around a Watermill publisher:
// topic checks, error context and an idempotent Close that also frees what
// the constructor opened for the transport.
type publisher struct {
	kind      Kind
	transport message.Publisher
	// prepare readies the broker for topic before its first publish (a
	// JetStream stream); nil when the transport does it itself.
	prepare func(topic string) error
	// release frees what the transport does not own, after it closed.
	release func()

	closeOnce sync.Once
	closeErr  error
}

// Publish implements message.Publisher.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	if err := checkTopic(topic); err != nil {
		return err
	}
	if p.prepare != nil {
		if err := p.prepare(topic); err != nil {
			return fmt.Errorf("%s: prepare topic %s: %w", p.kind, topic, err)
		}
	}
	if err := p.transport.Publish(topic, msgs...); err != nil {
		return fmt.Errorf("%s: publish to %s: %w", p.kind, topic, err)
	}
	return nil
}

// Close implements message.Publisher. It may be called more than once.
func (p *publisher) Close() error {
	p.closeOnce.Do(func() {
		p.closeErr = p.transport.Close()
		if p.release != nil {
			p.release()
		}
		if p.closeErr != nil {
			p.closeErr = fmt.Errorf("%s: close publisher: %w", p.kind, p.closeErr)
		}
	})
	return p.closeErr
}

// subscriber is publisher's counterpart for Watermill subscribers.
type subscriber struct {
	kind      Kind
	transport message.Subscriber
	// prepare readies the broker for the group on topic before Subscribe (a
	// JetStream stream and durable consumer); nil when not needed.
	prepare func(ctx context.Context, topic string) error
	release func()

	closeOnce sync.Once
	closeErr  error
}

// Subscribe implements message.Subscriber.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	if s.prepare != nil {
		if err := s.prepare(ctx, topic); err != nil {
			return nil, fmt.Errorf("%s: prepare subscription to %s: %w", s.kind, topic, err)
		}
	}
	ch, err := s.transport.Subscribe(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("%s: subscribe to %s: %w", s.kind, topic, err)
	}
	return ch, nil
}

// Close implements message.Subscriber: it stops every subscription, closes
// their channels and returns messages in hand to the group. It may be called
// more than once.
func (s *subscriber) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.transport.Close()
		if s.release != nil {
			s.release()
		}
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("%s: close subscriber: %w", s.kind, s.closeErr)
		}
	})
	return s.closeErr
}
