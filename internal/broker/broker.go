package broker

import (
	"context"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// NewPublisher connects to the broker cfg names and returns a Watermill
// publisher for it, which is also a relay.BatchPublisher. Publish returns
// only once the broker has stored the messages (a JetStream ack, a RabbitMQ
// publisher confirm, a Redis XADD, a Kafka ack from all in-sync replicas, a
// committed INSERT), so a caller that deletes its copy afterwards never loses
// one. Messages given to one Publish call are stored in order, and Publish
// stops at the first failure: each is sent once the one before it is stored,
// except on postgres, where one call is one transaction that stores all of
// them or none. PublishBatch keeps a whole run in flight at once and reports
// each message's fate, with errors IsPermanent classifies as for Publish.
// Both are safe for concurrent use.
func NewPublisher(ctx context.Context, cfg Config) (message.Publisher, error) {
	return newPublisher(ctx, cfg, clientHooks{})
}

func newPublisher(ctx context.Context, cfg Config, hooks clientHooks) (*publisher, error) {
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
		p, err = newNATSPublisher(ctx, cfg)
	case KindAMQP:
		p, err = newAMQPPublisher(cfg, logger)
	case KindRedis:
		p, err = newRedisPublisher(ctx, cfg)
	case KindKafka:
		p, err = newKafkaPublisher(cfg, hooks.kafkaProducer)
	case KindPostgres:
		p, err = newPostgresPublisher(ctx, cfg, hooks.postgresTx)
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
	s.closing = make(chan struct{})
	return s, nil
}

func watermillLogger(cfg Config) watermill.LoggerAdapter {
	return watermill.NewSlogLogger(cfg.Logger.With("component", "broker", "broker", string(cfg.Kind)))
}

// subscriber puts what all transports share around a Watermill
// subscriber: topic checks, error context and an idempotent Close that also
// frees what the constructor opened for the transport.
type subscriber struct {
	kind      Kind
	transport message.Subscriber
	// prepare readies the broker for the group on topic before Subscribe (a
	// JetStream stream and durable consumer); nil when not needed.
	prepare func(ctx context.Context, topic string) error
	// initialize is the transport's SubscribeInitialize where it has one
	// that fits: watermill-nats' would provision a stream of its own, and
	// watermill-kafka's wants partition counts that the cluster's own
	// topic creation decides.
	initialize func(topic string) error
	release    func()

	// closing is closed when Close begins; forwarders are the goroutines
	// passing the transport's messages on, which Close waits for.
	closing    chan struct{}
	forwarders sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error
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
	out := make(chan *message.Message)
	s.forwarders.Add(1)
	go s.forward(ctx, ch, out)
	return out, nil
}

// forward passes the transport's messages on until it closes ch, then
// closes out: so that out is closed by the time Close returns, whatever
// the transport's subscriber does with its own channel. A message
// nobody takes once Close began or ctx ended is nacked, back to the group.
func (s *subscriber) forward(ctx context.Context, ch <-chan *message.Message, out chan<- *message.Message) {
	defer s.forwarders.Done()
	defer close(out)
	for msg := range ch {
		select {
		case out <- msg:
		case <-s.closing:
			msg.Nack()
		case <-ctx.Done():
			msg.Nack()
		}
	}
}

// SubscribeInitialize implements message.SubscribeInitializer: it readies
// the group on topic without subscribing, so that on RabbitMQ the group's
// queue exists and keeps what is published before the first Subscribe.
func (s *subscriber) SubscribeInitialize(topic string) error {
	if err := checkTopic(topic); err != nil {
		return err
	}
	if s.prepare != nil {
		if err := s.prepare(context.Background(), topic); err != nil {
			return fmt.Errorf("%s: prepare subscription to %s: %w", s.kind, topic, err)
		}
	}
	if s.initialize != nil {
		if err := s.initialize(topic); err != nil {
			return fmt.Errorf("%s: initialize subscription to %s: %w", s.kind, topic, err)
		}
	}
	return nil
}

// Close implements message.Subscriber: it stops every subscription, closes
// their channels and returns messages in hand to the group. It may be called
// more than once.
func (s *subscriber) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.closeErr = s.transport.Close()
		s.forwarders.Wait()
		if s.release != nil {
			s.release()
		}
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("%s: close subscriber: %w", s.kind, s.closeErr)
		}
	})
	return s.closeErr
}
